pub mod audit;
pub mod backup;
pub mod calendar;
pub mod init;
pub mod keys;
pub mod profile;
pub mod sequencer;
pub mod serve;
