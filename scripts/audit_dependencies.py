"""`make audit`: pip-audit over the requirements files, failing on a known vulnerability.

pip-audit counts a package it could not look up as skipped and still says "No known
vulnerabilities found". Here that is said out loud: when the advisory service cannot be reached
(no network, or every look-up refused) the run prints that the packages were NOT audited and
exits 0, so an offline `make test` goes on; a vulnerability found always exits 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = [name for name in ("requirements.txt", "requirements-dev.txt") if (ROOT / name).exists()]
# What requests/pip say when the network is not there.
UNREACHABLE = (
    "ConnectionError",
    "NewConnectionError",
    "NameResolutionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "timed out",
)


def main() -> int:
    command = [str(Path(sys.executable).parent / "pip-audit"), "--progress-spinner", "off", "--format", "json"]
    for name in REQUIREMENTS:
        command += ["--requirement", name]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)  # noqa: S603
    try:
        report = json.loads(result.stdout)
    except ValueError:
        if any(marker in result.stderr for marker in UNREACHABLE):
            print("pip-audit: the package index or advisory service cannot be reached; dependencies NOT audited.")
            return 0
        print(result.stderr, file=sys.stderr)
        return result.returncode or 1

    dependencies = report.get("dependencies", [])
    vulnerable = [dep for dep in dependencies if dep.get("vulns")]
    skipped = [dep for dep in dependencies if dep.get("skip_reason")]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            print(f"VULNERABLE {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixed})")
    if skipped and len(skipped) == len(dependencies):
        print(f"pip-audit: the advisory service answered for none of {len(dependencies)} packages; NOT audited.")
    elif skipped:
        names = ", ".join(dep["name"] for dep in skipped)
        print(f"pip-audit: {len(skipped)} of {len(dependencies)} packages NOT audited: {names}")
    audited = len(dependencies) - len(skipped)
    if vulnerable:
        return 1
    if audited:
        print(f"pip-audit: no known vulnerability in {audited} audited packages ({', '.join(REQUIREMENTS)}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
