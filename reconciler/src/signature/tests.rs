//! The verification of real commit objects, signed by git with gpg and ssh-keygen
//! (`fixtures/make.sh` made them): what each kind of commit verifies as.

use super::*;

const NOW: i64 = 1_800_000_000; // 2027-01-15: after every fixture was made.

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/src/signature/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn text(name: &str) -> String {
    String::from_utf8(fixture(name)).unwrap()
}

fn certs(names: &[&str]) -> Vec<pgp::composed::SignedPublicKey> {
    names
        .iter()
        .flat_map(|n| openpgp::parse_keys(&text(&format!("{n}.asc"))).unwrap())
        .collect()
}

/// Ada's and Rev's and Old's OpenPGP keys, and Ada's SSH key, trusted; Eve's not.
fn keyring() -> Keyring {
    let ssh_line = format!("ada@example.com {}", text("ada_ssh.pub"));
    Keyring {
        openpgp: certs(&["ada", "old", "rev"]),
        ssh: ssh::parse_allowed_signers(&ssh_line).unwrap(),
        merge: Vec::new(),
    }
}

fn verify(name: &str) -> Verification {
    check(&fixture(name), &keyring(), Trust::Commits, NOW)
}

#[test]
fn each_kind_of_commit_verifies_as_what_people_read() {
    let lines: Vec<String> = [
        "unsigned",
        "openpgp_ada",
        "openpgp_eve",
        "openpgp_old",
        "openpgp_rev",
        "ssh_ada",
        "ssh_eve",
    ]
    .iter()
    .map(|name| format!("{name}: {}", verify(&format!("{name}.commit"))))
    .collect();
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn verdicts() {
    let verdict = |name: &str| verify(&format!("{name}.commit")).verdict;
    assert_eq!(verdict("unsigned"), Verdict::Unsigned);
    assert_eq!(verdict("openpgp_ada"), Verdict::Verified);
    assert_eq!(verdict("openpgp_eve"), Verdict::UntrustedKey);
    assert_eq!(verdict("openpgp_old"), Verdict::ExpiredKey);
    assert_eq!(verdict("openpgp_rev"), Verdict::RevokedKey);
    assert_eq!(verdict("ssh_ada"), Verdict::Verified);
    assert_eq!(verdict("ssh_eve"), Verdict::UntrustedKey);
}

/// The commit object with `from` replaced by `to` (same length or not), signature kept.
fn tampered(name: &str, from: &str, to: &str) -> Vec<u8> {
    let raw = text(name);
    assert!(raw.contains(from), "{name} holds {from:?}");
    raw.replacen(from, to, 1).into_bytes()
}

#[test]
fn a_commit_changed_after_signing_is_a_bad_signature() {
    for name in ["openpgp_ada.commit", "ssh_ada.commit"] {
        for (from, to) in [
            ("\n\nopenpgp_ada", "\n\nopenpgp_ada, and more"),
            ("\n\nssh_ada", "\n\nssh_ada, and more"),
            ("author Ada", "author Eve"),
            ("tree ", "tree 0"),
        ] {
            let raw = text(name);
            if !raw.contains(from) {
                continue;
            }
            let v = check(&tampered(name, from, to), &keyring(), Trust::Commits, NOW);
            assert_eq!(
                v.verdict,
                Verdict::BadSignature,
                "{name}: {from:?} -> {to:?}"
            );
            assert!(v.key.is_some(), "the key is named: {v}");
        }
    }
}

#[test]
fn the_payload_is_the_commit_without_its_signature_header() {
    let raw = fixture("ssh_ada.commit");
    let (signature, payload) = split(&raw).expect("signed");
    let signature = String::from_utf8(signature).unwrap();
    assert!(signature.starts_with("-----BEGIN SSH SIGNATURE-----\n"));
    assert!(signature.ends_with("-----END SSH SIGNATURE-----\n"));
    let text = String::from_utf8(payload).unwrap();
    assert!(!text.contains("gpgsig") && !text.contains("SSH SIGNATURE"));
    assert!(
        text.starts_with("tree ") && text.ends_with("\n\nssh_ada\n"),
        "{text}"
    );
    // An OpenPGP armor's empty line is a lone space in the header: unfolded, not the end.
    let (signature, _) = split(&fixture("openpgp_ada.commit")).unwrap();
    assert!(String::from_utf8(signature)
        .unwrap()
        .starts_with("-----BEGIN PGP SIGNATURE-----\n\n"));
    assert_eq!(split(&fixture("unsigned.commit")), None);
    // `gpgsig` in the message is the message's.
    assert_eq!(split(b"tree 1\n\ngpgsig no\n"), None);
}

#[test]
fn libgit2_extracts_the_same_signature_and_payload() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init_bare(dir.path()).unwrap();
    let odb = repo.odb().unwrap();
    for name in ["openpgp_ada.commit", "ssh_ada.commit"] {
        let raw = fixture(name);
        let oid = odb.write(git2::ObjectType::Commit, &raw).unwrap();
        let (sig, payload) = repo.extract_signature(&oid, None).unwrap();
        let (ours, our_payload) = split(&raw).unwrap();
        assert_eq!(our_payload, payload.to_vec(), "{name}");
        // libgit2 leaves out the armor's last newline; git keeps it. Both verify.
        assert_eq!(ours, [&sig[..], b"\n"].concat(), "{name}");
    }
}

#[test]
fn a_key_past_its_expiry_or_before_its_start_verifies_nothing() {
    let pub_key = text("ada_ssh.pub");
    let with = |options: &str| {
        let keys = Keyring {
            ssh: ssh::parse_allowed_signers(&format!("ada@example.com {options} {pub_key}"))
                .unwrap(),
            ..Keyring::default()
        };
        check(&fixture("ssh_ada.commit"), &keys, Trust::Commits, NOW).to_string()
    };
    insta::assert_snapshot!([
        with("valid-before=\"20261231\""),
        with("valid-after=\"20300101Z\""),
        with("namespaces=\"file\""),
        with("namespaces=\"file,git\",valid-after=\"20260101\""),
    ]
    .join("\n"));
    // OpenPGP: Old's key was good the day it signed, in 2020.
    let then = 1_577_880_000; // 2020-01-01T12:00:00Z
    let keys = Keyring {
        openpgp: certs(&["old"]),
        ..Keyring::default()
    };
    let at = |now| check(&fixture("openpgp_old.commit"), &keys, Trust::Commits, now).verdict;
    assert_eq!(at(then), Verdict::Verified);
    assert_eq!(at(NOW), Verdict::ExpiredKey);
}

#[test]
fn keys_for_merges_verify_only_for_merges() {
    let keys = Keyring {
        merge: certs(&["ada"]),
        ..Keyring::default()
    };
    let raw = fixture("openpgp_ada.commit");
    assert_eq!(
        check(&raw, &keys, Trust::Commits, NOW).verdict,
        Verdict::UntrustedKey
    );
    assert_eq!(
        check(&raw, &keys, Trust::Merges, NOW).verdict,
        Verdict::Verified
    );
}

#[test]
fn allowed_signers_lines() {
    let key = text("ada_ssh.pub");
    let key = key.trim();
    let file = format!(
        "# the platform team\n\n\
         ada@example.com {key}\n\
         \"bob@example.com,carol@example.com\" namespaces=\"git\",valid-before=\"202701010000\" {key}\n"
    );
    let signers = ssh::parse_allowed_signers(&file).unwrap();
    assert_eq!(signers.len(), 2);
    assert_eq!(signers[0].principals, "ada@example.com");
    assert_eq!(signers[0].namespaces, None);
    assert_eq!(signers[1].principals, "bob@example.com,carol@example.com");
    assert_eq!(signers[1].namespaces, Some(vec!["git".to_string()]));
    assert_eq!(signers[1].valid_before, Some(1_798_761_600));
    let errors = [
        "ada@example.com\n".to_string(),
        "ada@example.com ssh-ed25519 AAAAnotbase64\n".to_string(),
        format!("ada@example.com cert-authority {key}\n"),
        format!("ada@example.com valid-after=\"tomorrow\" {key}\n"),
    ];
    let messages: Vec<String> = errors
        .iter()
        .map(|f| {
            let (line, m) = ssh::parse_allowed_signers(f).unwrap_err();
            format!("line {line}: {m}")
        })
        .collect();
    insta::assert_snapshot!(messages.join("\n"));
}

#[test]
fn a_broken_key_file_is_an_error() {
    assert!(openpgp::parse_keys("not a key").is_err());
    let mut broken = text("ada.asc");
    broken.truncate(broken.len() / 2);
    assert!(openpgp::parse_keys(&broken).is_err());
}

#[test]
fn the_stored_form_round_trips_and_names_the_verdict() {
    let v = verify("ssh_ada.commit");
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["verdict"], "verified");
    assert_eq!(json["format"], "ssh");
    assert_eq!(serde_json::from_value::<Verification>(json).unwrap(), v);
    let unsigned = serde_json::to_string(&Verification::unsigned()).unwrap();
    assert_eq!(unsigned, r#"{"verdict":"unsigned","text":"unsigned"}"#);
}

#[test]
fn keys_are_read_again_only_when_a_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("keys");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("ada.asc"), text("ada.asc")).unwrap();
    std::fs::write(folder.join(".hidden"), "not a key").unwrap();
    let signers = dir.path().join("allowed_signers");
    std::fs::write(&signers, "").unwrap();
    let keys = TrustedKeys::new(KeyFiles {
        openpgp: vec![folder.clone()],
        allowed_signers: Some(signers.clone()),
        merge_openpgp: Vec::new(),
    });
    let first = keys.current().unwrap();
    assert_eq!((first.openpgp.len(), first.ssh.len()), (1, 0));
    assert!(
        std::sync::Arc::ptr_eq(&first, &keys.current().unwrap()),
        "unchanged: cached"
    );

    // A key added to the folder, an SSH key added, then Ada's removed.
    std::fs::write(folder.join("eve.asc"), text("eve.asc")).unwrap();
    std::fs::write(&signers, format!("ada@example.com {}", text("ada_ssh.pub"))).unwrap();
    let second = keys.current().unwrap();
    assert_eq!((second.openpgp.len(), second.ssh.len()), (2, 1));
    std::fs::remove_file(folder.join("ada.asc")).unwrap();
    let third = keys.current().unwrap();
    assert_eq!(third.openpgp.len(), 1);
    assert_eq!(
        check(&fixture("openpgp_ada.commit"), &third, Trust::Commits, NOW).verdict,
        Verdict::UntrustedKey
    );

    // A broken file is an error naming it.
    std::fs::write(
        folder.join("broken.asc"),
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n",
    )
    .unwrap();
    let err = keys.current().unwrap_err();
    assert!(err.to_string().contains("broken.asc"), "{err}");
}
