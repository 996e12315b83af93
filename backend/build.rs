//! Rebuilds the backend when the page changes: a release build carries `www/dist` inside
//! the binary (`page.rs`), and cargo would not otherwise see a file added under it.
fn main() {
    println!("cargo:rerun-if-changed=../www");
}
