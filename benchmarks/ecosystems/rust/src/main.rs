// A minimal program for neko-rebuilder's worked example of why builds differ.
fn main() {
    let mut buf = itoa::Buffer::new();
    println!("Hello from a reproducible image, {} bytes of itoa", buf.format(42u64).len());
}
