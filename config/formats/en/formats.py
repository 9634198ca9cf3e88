# Every date-time the admin shows carries its zone (an approver must never guess whether
# "16:00" is UTC or the operator's Shanghai time).
DATETIME_FORMAT = "Y-m-d H:i e"
SHORT_DATETIME_FORMAT = "Y-m-d H:i e"
DATE_FORMAT = "Y-m-d"
