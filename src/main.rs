fn main() {
    std::process::exit(azml::run());
}
