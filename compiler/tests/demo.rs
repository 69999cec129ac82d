//! The README's first command, as written there: `meshc demo` with its default (short)
//! timings runs the Bookinfo story through the real proxy, and what it reports holds.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

/// The demo command from the README's opening code block, split into words.
fn readme_demo_command() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let block = readme
        .split("```")
        .nth(1)
        .expect("README.md opens with a code block");
    let line = block
        .lines()
        .find(|l| l.contains(" demo"))
        .expect("the README's first code block runs the demo");
    let command = line.split('#').next().unwrap_or(line);
    command.split_whitespace().map(str::to_owned).collect()
}

/// A number that follows `before` in `text` (digits and a decimal point).
fn number_after(text: &str, before: &str) -> f64 {
    let start = text
        .find(before)
        .unwrap_or_else(|| panic!("`{before}` in:\n{text}"))
        + before.len();
    let digits: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("a number after `{before}` in:\n{text}"))
}

fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("a line with `{needle}` in:\n{text}"))
}

#[test]
fn the_readme_demo_command_runs_the_bookinfo_story() {
    let words = readme_demo_command();
    // `cargo run --release -p meshc -- demo ...`: the test runs the meshc this test build made
    // with the arguments after `--`.
    let separator = words
        .iter()
        .position(|w| w == "--")
        .expect("the demo command passes its arguments after `--`");
    assert_eq!(
        words[..separator].join(" "),
        "cargo run --release -p meshc",
        "the README's demo command"
    );
    let args = &words[separator + 1..];
    assert_eq!(args.first().map(String::as_str), Some("demo"));

    let output = Command::new(env!("CARGO_BIN_EXE_meshc"))
        .args(args)
        .output()
        .expect("meshc runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    // Progress went to stderr, step by step.
    assert!(
        stderr.contains("[1/10] checking policies/bookinfo"),
        "{stderr}"
    );
    assert!(stderr.contains("[10/10] stopping"), "{stderr}");

    // 1-3: check, build, start.
    assert!(
        stdout.contains("policies/bookinfo: 12 resources, 0 errors, 0 warnings"),
        "{stdout}"
    );
    for service in [
        "productpage v1",
        "details v1",
        "reviews v1",
        "reviews v2",
        "reviews v3",
        "ratings v1",
    ] {
        assert!(
            stdout.contains(&format!("{service} at 127.0.0.1:")),
            "{service}: {stdout}"
        );
    }
    assert!(
        stdout.contains("mesh-proxy: traffic 127.0.0.1:"),
        "{stdout}"
    );

    // 4: routing by user.
    assert!(
        line_with(&stdout, "anonymous  ").ends_with("reviews v1 200/200"),
        "{stdout}"
    );
    assert!(
        line_with(&stdout, "end-user: jason").ends_with("reviews v2 200/200"),
        "{stdout}"
    );

    // 5: the A/B split, observed over 1,000 requests: within 4 standard deviations (±63).
    let ab = &stdout[stdout.find("5. A/B test").expect("an A/B section")..];
    let v2 = number_after(ab, "   reviews v2 ");
    let v3 = number_after(ab, ", reviews v3 ");
    assert_eq!(v2 + v3, 1000.0, "{stdout}");
    assert!((v2 - 500.0).abs() <= 63.0, "v2 {v2}: {stdout}");

    // 6: the delay for jason (700 ms by default), and not for others; the abort at 50%.
    let delay_line = line_with(&stdout, "   jason:  fixed delay 700 ms");
    let observed: Vec<f64> = delay_line
        .split("observed ")
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .expect("observed delays")
        .split(", ")
        .map(|n| n.parse().expect("a delay in ms"))
        .collect();
    assert_eq!(observed.len(), 3, "{delay_line}");
    assert!(observed.iter().all(|&ms| ms >= 700.0), "{delay_line}");
    assert!(
        number_after(delay_line, "anonymous users: median ") < 700.0,
        "{delay_line}"
    );
    let aborted = number_after(&stdout, "abort with HTTP 500 for 50%: ");
    assert!(
        (aborted - 500.0).abs() <= 63.0,
        "aborted {aborted}: {stdout}"
    );

    // 7: retries mask the flaky service; without them half fail; a 404 is tried once.
    let without = line_with(&stdout, "without retries");
    assert!(
        (number_after(without, "): ") - 500.0).abs() <= 1.0,
        "{without}"
    );
    let with = line_with(
        &stdout,
        "with the policy's retries (3 attempts on 5xx,connect-failure)",
    );
    assert!(with.contains(": 1000/1000 succeeded (100.0%)"), "{with}");
    assert!(
        stdout.contains("a 404 is not retried: the client got 404, ratings saw 1 request\n"),
        "{stdout}"
    );

    // 8: the metrics, by destination version, counted what was sent.
    let metrics = &stdout[stdout.find("8. Metrics").expect("a metrics section")..];
    let reviews_v2_ok = metrics
        .lines()
        .find(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.starts_with(&["reviews", "v2", "200"])
        })
        .unwrap_or_else(|| panic!("a reviews v2 200 series in:\n{metrics}"));
    let counted: f64 = reviews_v2_ok
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .expect("a count");
    // jason's 200 requests and the A/B test's share of v2.
    assert_eq!(counted, 200.0 + v2, "{metrics}");
    assert!(
        stdout.contains("the services and the proxy are stopped"),
        "{stdout}"
    );

    // Every service port the demo used is free again.
    for port in 19080..=19085 {
        TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("port {port} is still taken after the demo: {e}"));
    }
}
