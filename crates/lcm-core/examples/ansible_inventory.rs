//! Prints the Ansible inventory (YAML) for the hosts of an inventory file's clusters:
//! `cargo run -q -p lcm-core --example ansible_inventory -- input.json [CLUSTER...]`.
//! With no cluster named, every cluster's hosts are listed.

use std::process::ExitCode;

use lcm_core::ansible::inventory_from_file;
use lcm_core::inventory::Inventory;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: ansible_inventory INVENTORY.json [CLUSTER...]");
        return ExitCode::from(2);
    };
    let clusters: Vec<String> = args.collect();
    let result = std::fs::read_to_string(&path)
        .map_err(|e| format!("{path}: {e}"))
        .and_then(|text| Inventory::parse(&path, &text).map_err(|e| e.to_string()))
        .and_then(|inventory| {
            let selection = (!clusters.is_empty()).then_some(clusters.as_slice());
            inventory_from_file(&inventory, selection)
        })
        .map(|value| lcm_core::ansible::render(&value));
    match result {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ansible_inventory: {e}");
            ExitCode::FAILURE
        }
    }
}
