//! `exactsim-node --spec FILE --role ROLE`: one process of a real-mode run
//! (roles: coordinator, broker, store, worker-<i>, reader, final-read).
//! `exactsim-node --sources` prints the hash of the sources it is built from.
//! Started and killed by `exactsim real`; not meant to be run by hand.

#[cfg(not(madsim))]
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--sources") {
        // The hash of the sources this binary is built from (see
        // `node/build.rs`): `exactsim real` compares it with its own.
        println!("{}", env!("EXACTSIM_NODE_SOURCES"));
        return std::process::ExitCode::SUCCESS;
    }
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let (Some(spec), Some(role)) = (arg("--spec"), arg("--role")) else {
        eprintln!("error: usage: exactsim-node --spec FILE --role ROLE");
        return std::process::ExitCode::from(2);
    };
    let spec: exactsim_node::wire::NodeSpec = match std::fs::read(&spec)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot read node spec {spec}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match exactsim_node::process::main_with(spec, &role) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(madsim)]
fn main() -> std::process::ExitCode {
    eprintln!("error: exactsim-node needs the std build: RUSTFLAGS= CARGO_TARGET_DIR=target/std cargo build --release");
    std::process::ExitCode::from(2)
}
