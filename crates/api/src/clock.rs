//! Where "today" comes from for the application layers (the domain never reads a clock).

use std::sync::atomic::{AtomicI32, Ordering};

use time::{Date, OffsetDateTime, UtcOffset};

/// Where "today" comes from. Business dates are in China Standard Time (UTC+8).
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    System,
    /// A fixed business date (tests, replays, benchmarks).
    Fixed(Date),
    /// A business date a driver moves (the demo loader replays past years through the
    /// commands); the Julian day, or 0 to follow the system clock.
    Simulated(&'static AtomicI32),
}

impl Clock {
    /// A simulated clock, following the system clock until [`Clock::set`] moves it. Each one
    /// lives as long as the process (one per demo run).
    pub fn simulated() -> Clock {
        Clock::Simulated(Box::leak(Box::new(AtomicI32::new(0))))
    }

    /// Moves a simulated clock to `day` (`None`: back to the system clock). Other clocks do not
    /// move.
    pub fn set(&self, day: Option<Date>) {
        if let Clock::Simulated(d) = self {
            d.store(day.map_or(0, Date::to_julian_day), Ordering::SeqCst);
        }
    }

    pub fn today(&self) -> Date {
        let system = || {
            let cst = UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC);
            OffsetDateTime::now_utc().to_offset(cst).date()
        };
        match self {
            Clock::System => system(),
            Clock::Fixed(d) => *d,
            Clock::Simulated(d) => match d.load(Ordering::SeqCst) {
                0 => system(),
                j => Date::from_julian_day(j).unwrap_or_else(|_| system()),
            },
        }
    }
}
