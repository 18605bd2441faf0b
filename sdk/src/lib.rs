//! Write cgigate native handler plugins in safe Rust. (The SDK proper is being written;
//! [`abi`] is the ABI the server loads.)

pub mod abi;
