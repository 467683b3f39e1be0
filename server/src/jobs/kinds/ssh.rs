//! The SSH check: where to connect and what the identification line must
//! contain or match.

use monitor_proto::v1::SshCheck;

use super::super::validate::{
    spec_unless_violated, validate_assertion_text, validate_host, validate_port, validate_regex,
};
use crate::error::FieldViolation;

pub(in crate::jobs) fn validate(ssh: &SshCheck, v: &mut Vec<FieldViolation>) -> Option<serde_json::Value> {
    let before = v.len();
    validate_host("ssh.host", &ssh.host, v);
    // 0 stands for 22.
    if ssh.port != 0 {
        validate_port("ssh.port", ssh.port, v);
    }
    validate_assertion_text("ssh.banner_contains", &ssh.banner_contains, v);
    validate_regex("ssh.banner_regex", &ssh.banner_regex, v);
    spec_unless_violated(ssh, before, v)
}

#[cfg(test)]
mod tests {
    use monitor_proto::v1::job::Check;

    use super::super::{pairs, violations_of};
    use super::*;

    fn violations(change: impl FnOnce(&mut SshCheck)) -> Vec<crate::error::FieldViolation> {
        let mut ssh = SshCheck {
            host: "bastion.example".into(),
            port: 22,
            banner_contains: "OpenSSH".into(),
            banner_regex: r"^SSH-2\.0-".into(),
        };
        change(&mut ssh);
        violations_of(Check::Ssh(ssh))
    }

    #[test]
    fn valid_specs_are_accepted() {
        assert_eq!(violations(|_| {}), []);
        assert_eq!(
            violations(|s| {
                s.port = 0;
                s.banner_contains = "c".repeat(1024);
                s.banner_regex.clear();
            }),
            []
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let found = violations(|s| {
            s.host = "bad host".into();
            s.port = 65_536;
            s.banner_contains = "c".repeat(1025);
            s.banner_regex = "(unclosed".into();
        });
        assert_eq!(
            pairs(&found),
            [
                ("ssh.host", "\"bad host\" is not a host name or IP address"),
                ("ssh.port", "must be 1 to 65535"),
                ("ssh.banner_contains", "must be at most 1024 characters"),
                (
                    "ssh.banner_regex",
                    "is not a valid regular expression: error: unclosed group"
                ),
            ]
        );
        let long = violations(|s| s.banner_regex = "r".repeat(1025));
        assert_eq!(pairs(&long), [("ssh.banner_regex", "must be at most 1024 characters")]);
    }
}
