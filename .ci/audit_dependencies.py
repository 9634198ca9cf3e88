"""pip-audit for `make test`, telling "could not audit" apart from "no known vulnerabilities".

pip-audit exits 0 and prints "No known vulnerabilities found" even when the advisory service
answered for none of the dependencies (each one is then only "skipped"), and exits 1 with no
report when the service cannot be reached at all (its own "your network may be blocking this
service" tip, or a traceback ending in a requests exception). Its exit status alone therefore
proves nothing; this reads its JSON report and its stderr as well
(docs/decisions/reliability-pip-audit.md).

Exit status: 1 for a known vulnerability, for a partial audit or for a pip-audit failure;
0 for a full audit that found nothing, and 0 with a NOT AUDITED line when the advisory service
answered for no dependency at all (a network without it must not stop the other checks).
"""

import json
import subprocess
import sys
from pathlib import Path

PIP_AUDIT = Path(sys.executable).with_name("pip-audit")
# What pip-audit writes to stderr when no request reached the advisory service.
UNREACHABLE = ("network may be blocking this service", "requests.exceptions.")


def main() -> int:
    audit = subprocess.run(  # noqa: S603  (a fixed command: pip-audit from this venv)
        [PIP_AUDIT, "--skip-editable", "--progress-spinner", "off", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        dependencies = json.loads(audit.stdout)["dependencies"]
    except (json.JSONDecodeError, KeyError):
        last_error = (audit.stderr.strip().splitlines() or ["no output"])[-1]
        if any(sign in audit.stderr for sign in UNREACHABLE):
            print(f"pip-audit NOT AUDITED: the advisory service is unreachable ({last_error})")
            return 0
        print(f"pip-audit failed (exit status {audit.returncode}) with no report:\n{audit.stderr}")
        return 1

    vulnerable = [d for d in dependencies if d.get("vulns")]
    skipped = [d for d in dependencies if "skip_reason" in d]
    for dependency in vulnerable:
        for vulnerability in dependency["vulns"]:
            fixed_in = ", ".join(vulnerability["fix_versions"]) or "no fixed version"
            print(
                f"pip-audit: {dependency['name']} {dependency['version']} has "
                f"{vulnerability['id']} (fixed in {fixed_in})"
            )
    if vulnerable:
        return 1
    if audit.returncode != 0:
        print(f"pip-audit failed (exit status {audit.returncode}):\n{audit.stderr}")
        return 1
    if skipped and len(skipped) == len(dependencies):
        print(
            f"pip-audit NOT AUDITED: the advisory service answered for none of the "
            f"{len(dependencies)} dependencies ({skipped[0]['skip_reason']})"
        )
        return 0
    if skipped:
        names = ", ".join(d["name"] for d in skipped)
        print(f"pip-audit PARTIAL: {len(skipped)} dependencies could not be audited: {names}")
        return 1
    print(f"pip-audit: {len(dependencies)} dependencies audited, no known vulnerabilities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
