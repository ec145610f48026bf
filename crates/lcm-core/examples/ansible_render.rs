//! Renders an inventory given as JSON on stdin exactly as host preparation writes it
//! (`lcm_core::ansible::render`): the static checks feed it values validation would refuse,
//! to show that real Ansible reads them as inert data.

use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut text = String::new();
    let parsed = std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_str(&text).map_err(|e| e.to_string()));
    match parsed {
        Ok(value) => {
            print!("{}", lcm_core::ansible::render(&value));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ansible_render: stdin is not JSON: {e}");
            ExitCode::FAILURE
        }
    }
}
