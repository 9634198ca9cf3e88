# Every date-time the admin shows carries its zone, as in English.
DATETIME_FORMAT = "Y年n月j日 H:i e"
SHORT_DATETIME_FORMAT = "Y-m-d H:i e"
DATE_FORMAT = "Y年n月j日"
