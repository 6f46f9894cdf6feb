"""Which of TRL's SFT tests pass with TRL's trainer, and which of those fail with each ProFit mode (junit XML files).

    python scripts/trl_sft_tests/compare.py WORK_DIR trl profit-sftconfig profit-all profit
"""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def outcomes(path: Path) -> dict[str, tuple[str, str]]:
    """test id -> (passed/failed/error/skipped, first line of the failure)."""
    result = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}"
        status, why = "passed", ""
        for kind in ("failure", "error", "skipped"):
            node = case.find(kind)
            if node is not None:
                status = {"failure": "failed"}.get(kind, kind)
                why = (node.get("message") or "").strip().splitlines()[0][:160] if node.get("message") else ""
                break
        result[name] = (status, why)
    return result


def main(argv: list[str]) -> int:
    work, modes = Path(argv[0]), argv[1:]
    reference, *ours = modes
    runs = {m: outcomes(work / f"{m}.xml") for m in modes if (work / f"{m}.xml").exists()}
    ref = runs[reference]
    passing = sorted(t for t, (s, _) in ref.items() if s == "passed")
    counts = {m: sum(1 for s, _ in r.values() if s == "passed") for m, r in runs.items()}
    print(f"{len(ref)} tests collected; passed: " + ", ".join(f"{m} {counts[m]}" for m in runs))
    for mode in ours:
        if mode not in runs:
            continue
        lost = [t for t in passing if runs[mode].get(t, ("missing", ""))[0] != "passed"]
        gained = [t for t, (s, _) in runs[mode].items() if s == "passed" and ref.get(t, ("",))[0] != "passed"]
        print(f"\n{mode}: {len(passing) - len(lost)} of the {len(passing)} tests that pass with {reference} pass"
              + (f"; {len(gained)} pass only with {mode}" if gained else ""))
        for t in lost:
            status, why = runs[mode].get(t, ("missing", ""))
            print(f"  {status}: {t}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
