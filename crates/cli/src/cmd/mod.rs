pub mod calendar;
pub mod init;
pub mod profile;
