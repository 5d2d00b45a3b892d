use super::*;

fn deny_all() -> DeviceRule {
    DeviceRule::from_spec(false, None, None, None, Some("rwm")).unwrap()
}

/// `runc spec`'s rules: deny everything, then runc's default list.
fn runc_default() -> Vec<DeviceRule> {
    let mut rules = vec![deny_all()];
    rules.extend_from_slice(DEFAULT_ALLOWED);
    rules
}

#[test]
fn rules_read_and_print_in_the_v1_format() {
    let rule = DeviceRule::from_spec(true, Some("c"), Some(1), Some(3), Some("mwr")).unwrap();
    assert_eq!(rule.to_string(), "c 1:3 rwm");
    let any = DeviceRule::from_spec(true, Some("b"), None, Some(-1), Some("m")).unwrap();
    assert_eq!(any.to_string(), "b *:* m");
    assert_eq!(deny_all().to_string(), "a *:* rwm");
    assert!(DeviceRule::from_spec(true, Some("x"), None, None, None).is_err());
    assert!(DeviceRule::from_spec(true, Some("c"), Some(1), None, Some("rx")).is_err());
    assert!(DeviceRule::from_spec(true, Some("c"), Some(1 << 40), None, None).is_err());
    // runc: "device access at 0 field cannot be empty", missing or "".
    for access in [None, Some("")] {
        let err = DeviceRule::from_spec(false, None, None, None, access).unwrap_err();
        assert_eq!(err.to_string(), "device access cannot be empty");
    }
}

#[test]
fn the_fold_follows_the_v1_kernel() {
    let runc = effective(&runc_default());
    assert!(!runc.default_allow);
    assert_eq!(runc.exceptions.len(), DEFAULT_ALLOWED.len());
    // A later deny takes access away from an allowed device; a later "a" starts over.
    let mut rules = runc_default();
    rules.push(DeviceRule {
        allow: false,
        access: ACC_WRITE | ACC_MKNOD,
        ..DeviceRule::char_rwm(1, Some(3))
    });
    let e = effective(&rules);
    let null = e.exceptions.iter().find(|r| r.minor == Some(3)).unwrap();
    assert_eq!(null.to_string(), "c 1:3 r");
    rules.push(DeviceRule {
        allow: true,
        ..deny_all()
    });
    assert_eq!(
        effective(&rules),
        Effective {
            default_allow: true,
            exceptions: vec![]
        }
    );
}

#[test]
fn the_program_has_runc_shape() {
    let deny = program(&[deny_all()]);
    assert_eq!(deny.len(), 8, "prologue, r0 = 0, exit");
    assert_eq!(deny[0], Insn::new(LDX_MEM_W, 2, 1, 0, 0));
    assert_eq!(deny[3], Insn::new(ALU32_RSH_K, 3, 0, 0, 16));
    assert_eq!(deny[6], Insn::new(ALU32_MOV_K, 0, 0, 0, 0));
    assert_eq!(deny[7].code, JMP_EXIT);

    let null = program(&[deny_all(), DeviceRule::char_rwm(1, Some(3))]);
    assert_eq!(
        &null[6..11],
        &[
            Insn::new(JMP_JNE_K, 2, 0, 4, DEV_CHAR),
            Insn::new(JMP_JNE_K, 4, 0, 3, 1),
            Insn::new(JMP_JNE_K, 5, 0, 2, 3),
            Insn::new(ALU32_MOV_K, 0, 0, 0, 1),
            Insn::new(JMP_EXIT, 0, 0, 0, 0),
        ]
    );
    let mknod_any = program(&[deny_all(), DEFAULT_ALLOWED[0]]);
    assert_eq!(
        &mknod_any[6..12],
        &[
            Insn::new(JMP_JNE_K, 2, 0, 5, DEV_CHAR),
            Insn::new(ALU32_MOV_X, 1, 3, 0, 0),
            Insn::new(ALU32_AND_K, 1, 0, 0, i32::from(ACC_MKNOD)),
            Insn::new(JMP_JNE_X, 1, 3, 2, 0),
            Insn::new(ALU32_MOV_K, 0, 0, 0, 1),
            Insn::new(JMP_EXIT, 0, 0, 0, 0),
        ]
    );
    // The register nibbles: dst low, src high.
    assert_eq!(Insn::new(ALU32_MOV_X, 1, 3, 0, 0).regs, 0x31);
}

#[test]
fn the_program_decides_as_the_rules_say() {
    let p = program(&runc_default());
    let ask = |kind, access, major, minor| run(&p, kind, access, major, minor).unwrap();
    assert_eq!(ask(DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), 1, "/dev/null");
    assert_eq!(ask(DEV_CHAR, ACC_WRITE, 1, 11), 0, "/dev/kmsg");
    assert_eq!(ask(DEV_CHAR, ACC_MKNOD, 10, 237), 1, "mknod of anything");
    assert_eq!(ask(DEV_CHAR, ACC_READ, 10, 237), 0, "but not opening it");
    assert_eq!(ask(DEV_BLOCK, ACC_READ, 8, 0), 0, "/dev/sda");
    assert_eq!(ask(DEV_CHAR, ACC_READ | ACC_WRITE, 136, 7), 1, "/dev/pts/7");
    // A blacklist: allow everything but the kernel log.
    let kmsg = DeviceRule {
        allow: false,
        ..DeviceRule::char_rwm(1, Some(11))
    };
    let p = program(&[kmsg]);
    assert_eq!(run(&p, DEV_CHAR, ACC_WRITE, 1, 11).unwrap(), 0);
    assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 8, 0).unwrap(), 1);
}

#[test]
fn the_cache_gives_back_the_same_program() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let rules = runc_default();
    let first = compile_cached(&rules, Some(&cache)).unwrap();
    let key = rules_key(&rules).unwrap();
    let file = cache.join(format!("devices-{key}.ebpf"));
    assert_eq!(from_bytes(&std::fs::read(&file).unwrap()).unwrap(), *first);
    assert_eq!(*first, program(&rules));
    assert_ne!(key, rules_key(&[deny_all()]).unwrap());
    assert!(from_bytes(&[0; 7]).is_none());
}

#[test]
fn the_kernel_verifier_accepts_the_program() {
    if !nix::unistd::geteuid().is_root() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "prerequisite missing under CI=true: root for bpf(2)"
        );
        eprintln!("SKIPPED (prerequisite missing, would fail under CI=true): root for bpf(2)");
        return;
    }
    load(&program(&runc_default())).unwrap();
    load(&program(&[deny_all()])).unwrap();
}
