//! Test helper: starts a control plane, prints its process ids and temp dir, then panics
//! without any cleanup of its own. The harness test checks that nothing is left behind.
fn main() {
    let cp = wca_test_harness::ControlPlane::start().expect("control plane starts");
    let pids: Vec<String> = cp.pids.iter().map(u32::to_string).collect();
    println!("PIDS={}", pids.join(" "));
    println!(
        "DIR={}",
        cp.kubeconfig()
            .parent()
            .expect("kubeconfig has a dir")
            .display()
    );
    // Leak it so no Drop runs: only the closing of stdin at process exit may clean up.
    std::mem::forget(cp);
    panic!("simulated test crash");
}
