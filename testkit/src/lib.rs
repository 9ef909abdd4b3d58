//! Helpers for geobutton's tests and benches (a dev-dependency only, never of a library):
//! child processes serving on loopback ports and command output ([`process`]), the Lambda
//! runtime emulator with the real stage binaries as its function instances ([`lambda`]),
//! the environment of a process that talks to the loopback AWS emulators ([`aws`]), and the
//! fixtures of `../shared/data` ([`fixtures`]).
//!
//! Everything listens and connects on 127.0.0.1 only. Errors come back as
//! [`std::io::Error`]s naming what failed, so a test can `expect` them and a bench report
//! them.

pub mod aws;
pub mod fixtures;
pub mod lambda;
pub mod process;
