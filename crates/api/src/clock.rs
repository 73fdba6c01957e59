//! Where "today" comes from for the application layers (the domain never reads a clock).

use time::{Date, OffsetDateTime, UtcOffset};

/// Where "today" comes from. Business dates are in China Standard Time (UTC+8).
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    System,
    /// A fixed business date (tests, replays, benchmarks).
    Fixed(Date),
}

impl Clock {
    pub fn today(&self) -> Date {
        match self {
            Clock::System => {
                let cst = UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC);
                OffsetDateTime::now_utc().to_offset(cst).date()
            }
            Clock::Fixed(d) => *d,
        }
    }
}
