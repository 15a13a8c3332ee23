fn main() {
    println!("headsup");
}
