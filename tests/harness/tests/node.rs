//! The real node (tests/node/up.sh) leaves the host as it found it: no process, mount,
//! interface, address, route, cgroup, iptables or nftables rule, sysctl change or host directory
//! of its own survives its teardown, nor that of a node whose supervisor was killed (the next
//! start cleans it up). A snapshot of all of these is taken before the nodes start, while one
//! runs (to prove the snapshot sees the node at all), and after it is dropped.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use wca_test_harness::node::Node;

/// Names of the programs the node runs (kernel `comm`, cut at 15 characters).
const NODE_PROGRAMS: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-controller",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "containerd",
    "containerd-shim",
    "coredns",
    "traefik",
    "pause",
];

/// Host paths the node's components could create outside their work directory.
const HOST_PATHS: &[&str] = &[
    "/run/containerd",
    "/var/lib/cni",
    "/var/lib/kubelet",
    "/var/log/containers",
    "/var/log/pods",
    "/usr/libexec/kubernetes",
    "/var/run/kubernetes",
    "/etc/kubernetes",
    "/var/lib/containerd",
    "/opt/containerd",
    "/run/netns",
    "/etc/cni",
    "/opt/cni",
    "/run/runc",
    "/var/lib/kube-proxy",
    "/run/flannel",
];

/// Sysctls that move on their own (counters, entropy, the last pid).
fn volatile(key: &str) -> bool {
    [
        "kernel.random.",
        "fs.dentry-state",
        "fs.file-nr",
        "fs.inode-nr",
        "fs.inode-state",
        "fs.aio-nr",
        "fs.quota.",
        "kernel.ns_last_pid",
        "kernel.pty.nr",
        "net.netfilter.nf_conntrack_count",
        "kernel.sched_",
        "net.ipv4.tcp_mem",
        "net.ipv4.udp_mem",
        "kernel.perf_event_max_sample_rate",
    ]
    .iter()
    .any(|prefix| key.starts_with(prefix))
}

#[derive(Debug, PartialEq, Eq)]
struct HostState {
    processes: BTreeSet<String>,
    mounts: BTreeSet<String>,
    links: BTreeSet<String>,
    addresses: BTreeSet<String>,
    routes: BTreeSet<String>,
    cgroups: BTreeSet<String>,
    iptables: BTreeSet<String>,
    nftables: String,
    sysctls: BTreeSet<String>,
    host_paths: BTreeSet<String>,
    work_dirs: BTreeSet<String>,
    modules: BTreeSet<String>,
}

fn lines(program: &str, args: &[&str]) -> BTreeSet<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn dirs_under(root: &Path, out: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry
            .file_type()
            .is_ok_and(|t| t.is_dir() && !t.is_symlink())
        {
            out.insert(path.display().to_string());
            dirs_under(&path, out);
        }
    }
}

impl HostState {
    fn capture() -> Self {
        let processes = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
                let comm = comm.trim();
                NODE_PROGRAMS
                    .contains(&comm)
                    .then(|| format!("{pid} {comm}"))
            })
            .collect();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .collect();
        let mut cgroups = BTreeSet::new();
        dirs_under(Path::new("/sys/fs/cgroup"), &mut cgroups);
        // Counters and their headers (`[packets:bytes]`, `# Generated …`) change with traffic.
        let iptables = ["iptables-save", "ip6tables-save"]
            .iter()
            .flat_map(|p| lines(p, &[]))
            .filter(|l| !l.starts_with('#'))
            .map(|l| match l.rfind(" [") {
                Some(i) if l.starts_with(':') => l[..i].to_string(),
                _ => l,
            })
            .collect();
        let nftables = String::from_utf8_lossy(
            &Command::new("nft")
                .args(["list", "ruleset"])
                .output()
                .unwrap()
                .stdout,
        )
        .into_owned();
        let sysctls = lines("sysctl", &["-a"])
            .into_iter()
            .filter(|l| !volatile(l))
            .collect();
        let host_paths = HOST_PATHS
            .iter()
            .filter(|p| Path::new(p).exists())
            .map(|p| p.to_string())
            .collect();
        let work_dirs = std::fs::read_dir("/tmp")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| n.starts_with("wca-node."))
            .collect();
        let modules = std::fs::read_to_string("/proc/modules")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').next().map(str::to_string))
            .collect();
        Self {
            processes,
            mounts,
            links: lines("ip", &["-o", "link", "show"])
                .into_iter()
                .map(|l| l.split(':').nth(1).unwrap_or_default().trim().to_string())
                .collect(),
            addresses: lines("ip", &["-o", "addr", "show"]),
            routes: lines("ip", &["route", "show", "table", "all"]),
            cgroups,
            iptables,
            nftables,
            sysctls,
            host_paths,
            work_dirs,
            modules,
        }
    }

    /// What differs from `other`, field by field, as `+ added` / `- removed` lines.
    fn diff(&self, other: &Self) -> String {
        fn sets(name: &str, a: &BTreeSet<String>, b: &BTreeSet<String>, out: &mut String) {
            for x in b.difference(a) {
                out.push_str(&format!("{name}: + {x}\n"));
            }
            for x in a.difference(b) {
                out.push_str(&format!("{name}: - {x}\n"));
            }
        }
        let mut out = String::new();
        // Only new processes: the previous test binary's control plane may still be stopping
        // when this one starts, and is gone by the end.
        for x in other.processes.difference(&self.processes) {
            out.push_str(&format!("process: + {x}\n"));
        }
        sets("mount", &self.mounts, &other.mounts, &mut out);
        sets("link", &self.links, &other.links, &mut out);
        sets("address", &self.addresses, &other.addresses, &mut out);
        sets("route", &self.routes, &other.routes, &mut out);
        sets("cgroup", &self.cgroups, &other.cgroups, &mut out);
        sets("iptables", &self.iptables, &other.iptables, &mut out);
        sets("sysctl", &self.sysctls, &other.sysctls, &mut out);
        sets("host path", &self.host_paths, &other.host_paths, &mut out);
        sets("work dir", &self.work_dirs, &other.work_dirs, &mut out);
        sets("module", &self.modules, &other.modules, &mut out);
        if self.nftables != other.nftables {
            out.push_str(&format!(
                "nftables:\n--- before\n{}\n--- after\n{}\n",
                self.nftables, other.nftables
            ));
        }
        out
    }
}

#[test]
fn a_node_leaves_the_host_as_it_found_it() {
    let before = HostState::capture();

    // A node whose supervisor is killed (SIGKILL: no trap runs) leaves everything running; the
    // next start must clean that up before it starts its own.
    let orphaned = Node::start(&[]).expect("the first node starts");
    let supervisor: i32 = orphaned.fact("SUPERVISOR").unwrap().parse().unwrap();
    let orphan_dir = orphaned.dir().to_path_buf();
    let orphan_pids = orphaned.pids.clone();
    assert!(
        Command::new("kill")
            .args(["-9", &supervisor.to_string()])
            .status()
            .unwrap()
            .success()
    );
    drop(orphaned);
    assert!(orphan_dir.exists(), "a killed supervisor cleans up nothing");

    let started = Instant::now();
    let node = Node::start(&[]).expect("the node starts after a killed one");
    assert!(!orphan_dir.exists(), "the killed node's work dir is gone");
    for pid in orphan_pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .unwrap_or_default()
                    .contains(") Z "),
            "process {pid} of the killed node is gone"
        );
    }
    eprintln!(
        "node Ready with DNS and ingress in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Pods ran (CoreDNS and Traefik), so there is something to clean up, and the snapshot sees it.
    let pods = node
        .kubectl_ok(&["get", "pods", "-A", "--no-headers"])
        .unwrap();
    assert!(pods.lines().count() >= 2, "{pods}");
    let during = HostState::capture();
    let running = before.diff(&during);
    for expected in [
        "link: + wca0",
        "process: + ",
        "mount: + ",
        "cgroup: + /sys/fs/cgroup/pids/kubepods",
        "iptables: + :KUBE-SERVICES",
        "work dir: + wca-node.",
    ] {
        assert!(
            running.contains(expected),
            "while the node runs the snapshot shows `{expected}`:\n{running}"
        );
    }

    let stopping = Instant::now();
    drop(node);
    eprintln!(
        "node torn down in {:.1} s",
        stopping.elapsed().as_secs_f64()
    );
    let after = HostState::capture();
    let left = before.diff(&after);
    assert!(left.is_empty(), "the node left the host changed:\n{left}");
}
