//! Running a server: setting one up (`init`), backing it up and restoring
//! it, the data directory's schema version, and the control socket the
//! backup uses to reach a running server.

pub mod backup;
pub mod control;
mod copy_tree;
pub mod init;
pub mod schema;
