//! Security regressions: each module proves one finding of the security
//! review fixed (the test failed on the code before the fix).

mod fuzz;
mod homes;
mod visibility;
