#!/usr/bin/env python3
"""Regenerate testdata/chinesecalendar-2018-2026.txt from the PyPI package `chinesecalendar`.

    pip install chinesecalendar==1.11.0 && python3 tools/export_chinesecalendar.py

One line per day from 2018-01-01 to 2026-12-31: `YYYY-MM-DD W` (working day) or `YYYY-MM-DD R`
(rest day). The Rust test `tests/cross_check.rs` compares every day with prc-holidays.toml.
"""
import datetime as dt
import pathlib

import chinese_calendar

out = pathlib.Path(__file__).resolve().parent.parent / "testdata" / "chinesecalendar-2018-2026.txt"
day, last = dt.date(2018, 1, 1), dt.date(2026, 12, 31)
lines = [f"# chinesecalendar {chinese_calendar.__version__}: W = working day, R = rest day"]
while day <= last:
    lines.append(f"{day.isoformat()} {'W' if chinese_calendar.is_workday(day) else 'R'}")
    day += dt.timedelta(days=1)
out.write_text("\n".join(lines) + "\n")
print(f"wrote {len(lines) - 1} days to {out}")
