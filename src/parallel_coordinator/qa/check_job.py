"""The process a built-in file check runs in: `python -m parallel_coordinator.qa.check_job`, supervised like an agent.

stdin: {"check": "syntax_check" | "security_scan", "root": ..., "files": [...]}; stdout: one JSON verdict
(verdicts.CheckResult). The checkers it starts are its children, so a cancel kills them with it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from parallel_coordinator.qa.security import scan_files
from parallel_coordinator.qa.syntax import check_files
from parallel_coordinator.qa.verdicts import SECURITY, SYNTAX, CheckResult

_CHECKS = {SYNTAX: check_files, SECURITY: scan_files}


def main() -> int:
    request = json.loads(sys.stdin.buffer.read())
    check = _CHECKS.get(request.get("check"))
    if check is None:
        sys.stderr.write(f"unknown check {request.get('check')!r}; this process runs {', '.join(_CHECKS)}\n")
        return 2
    result: CheckResult = check(Path(request["root"]), [str(name) for name in request.get("files", [])])
    sys.stdout.write(json.dumps(result.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
