fn main() {
    print!("{}", workos_convex_auth::api::crd_yaml());
}
