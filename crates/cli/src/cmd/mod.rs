pub mod audit;
pub mod calendar;
pub mod init;
pub mod keys;
pub mod profile;
pub mod serve;
