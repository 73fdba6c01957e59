//! Every day of 2018–2026 compared with the PyPI package `chinesecalendar`
//! (fixture written by `tools/export_chinesecalendar.py`).

use banli_calendar::{Calendar, parse_date};

#[test]
fn every_covered_day_agrees_with_chinesecalendar() {
    let cal = Calendar::embedded();
    let fixture = include_str!("../testdata/chinesecalendar-2018-2026.txt");
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for line in fixture.lines().filter(|l| !l.starts_with('#')) {
        let (date, kind) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("bad fixture line {line}"));
        let date = parse_date(date).unwrap_or_else(|e| panic!("{line}: {e}"));
        let theirs = kind == "W";
        let ours = cal
            .is_workday(date)
            .unwrap_or_else(|| panic!("{date} not covered"));
        if ours != theirs {
            mismatches.push(format!("{date}: ours {ours}, chinesecalendar {theirs}"));
        }
        checked += 1;
    }
    assert_eq!(checked, 3287, "2018-01-01..=2026-12-31");
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}
