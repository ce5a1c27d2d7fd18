//! The `parse` program's log: the instructions `Model::parse` takes on the Cortex-M4 for the
//! firmware's model and for [`PARSE_MODEL`], the latter pinned at [`PARSE_BUDGET`].

use anyhow::{Result, bail};

use super::{PARSE_BUDGET, PARSE_MODEL};

/// One line of the `parse` program's log.
#[derive(Debug, PartialEq)]
pub struct ParseCost {
    pub model: String,
    pub bytes: u64,
    pub ops: u64,
    pub tensors: u64,
    pub instructions: u64,
}

/// The `parse` program's lines.
pub fn parse_costs(log: &str) -> Result<Vec<ParseCost>> {
    let mut out = Vec::new();
    for line in log.lines() {
        let Some(rest) = line.trim().strip_prefix("INFO").map(str::trim_start) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix("parse model ") else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let [model, "bytes", b, "ops", o, "tensors", t, "instructions", i] = f.as_slice() else {
            bail!("unexpected parse line: `{line}`");
        };
        let num = |s: &str| crate::cmd::number(s, line);
        out.push(ParseCost {
            model: (*model).to_owned(),
            bytes: num(b)?,
            ops: num(o)?,
            tensors: num(t)?,
            instructions: num(i)?,
        });
    }
    Ok(out)
}

/// Checks the `parse` program's log: both models parsed, [`PARSE_MODEL`] within
/// [`PARSE_BUDGET`] instructions. Prints the figures.
pub fn check_parse(log: &str) -> Result<()> {
    let costs = parse_costs(log)?;
    if costs.len() != 2 {
        bail!(
            "the `parse` program logged {} models, expected 2 (the firmware's and {PARSE_MODEL})",
            costs.len()
        );
    }
    for c in &costs {
        println!(
            "parse {}: {} instructions for {} bytes, {} ops, {} tensors ({:.0} per op + tensor)",
            c.model,
            c.instructions,
            c.bytes,
            c.ops,
            c.tensors,
            c.instructions as f64 / (c.ops + c.tensors).max(1) as f64
        );
    }
    let big = &costs[1];
    if big.instructions == 0 || big.instructions > PARSE_BUDGET {
        bail!(
            "Model::parse of {PARSE_MODEL} ({}) took {} instructions on the Cortex-M4, over the \
             pinned {PARSE_BUDGET} (tools/xtask/src/deploy/mod.rs PARSE_BUDGET)",
            big.model,
            big.instructions
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_log_lines_and_budget() {
        let log = "INFO  parse model digits-mtl bytes 9000 ops 30 tensors 40 instructions 12345\n\
                   INFO  something else\n\
                   INFO parse model mcu-bench-mtl bytes 90000 ops 80 tensors 120 instructions 7\n";
        let c = parse_costs(log).expect("valid log");
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[1],
            ParseCost {
                model: "mcu-bench-mtl".into(),
                bytes: 90000,
                ops: 80,
                tensors: 120,
                instructions: 7
            }
        );
        assert_eq!(c[0].instructions, 12345);
        check_parse(log).expect("7 instructions are within the pin");
        let over = log.replace(
            "instructions 7\n",
            &format!("instructions {}\n", PARSE_BUDGET + 1),
        );
        let err = check_parse(&over).expect_err("over the pin").to_string();
        assert!(err.contains("over the pinned"), "{err}");
        assert!(
            check_parse("INFO parse model a bytes 1 ops 1 tensors 1 instructions 1\n").is_err()
        );
        assert!(
            parse_costs("INFO parse model a bytes x ops 1 tensors 1 instructions 1\n").is_err()
        );
        assert!(parse_costs("INFO parse model a bytes 1\n").is_err());
    }
}
