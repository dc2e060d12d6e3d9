//! ISO/IEC 19794-2:2005 and ANSI/INCITS 378-2004 records and our own
//! template: round trips on real templates, typed errors on bad input.

mod common;

use common::template;
use sinhtrac_finger::{
    FingerError, FingerPosition, FingerRecord, FingerTemplate, FingerView, Matcher, Standard,
};
use std::f32::consts::TAU;

fn record() -> FingerRecord {
    let a = template("fvc2002/DB1_B", 101, 1);
    let b = template("fvc2002/DB1_B", 102, 1);
    let mut r = FingerRecord::single(FingerPosition::RIGHT_INDEX, a);
    r.views.push(FingerView {
        position: FingerPosition::LEFT_THUMB,
        view_number: 0,
        impression_type: 0,
        quality: 70,
        template: FingerTemplate {
            width: r.width,
            height: r.height,
            ..b
        },
    });
    r
}

fn angle_err(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(TAU);
    d.min(TAU - d)
}

#[test]
fn iso_and_ansi_round_trip_multi_finger() {
    let r = record();
    for (std, tol) in [
        (Standard::Iso19794_2_2005, TAU / 256.0),
        (Standard::Ansi378_2004, TAU / 180.0),
    ] {
        let bytes = r.encode(std).expect("encode");
        let back = FingerRecord::decode(&bytes, std).expect("decode");
        assert_eq!(back.views.len(), 2);
        assert_eq!(
            (back.width, back.height, back.dpi),
            (r.width, r.height, r.dpi)
        );
        assert_eq!(
            back.finger(FingerPosition::LEFT_THUMB).map(|v| v.quality),
            Some(70)
        );
        for (v, w) in r.views.iter().zip(&back.views) {
            assert_eq!(v.position, w.position);
            assert_eq!(v.template.minutiae.len(), w.template.minutiae.len());
            for (m, n) in v.template.minutiae.iter().zip(&w.template.minutiae) {
                assert_eq!((m.x, m.y, m.kind, m.quality), (n.x, n.y, n.kind, n.quality));
                assert!(
                    angle_err(m.angle, n.angle) <= tol / 2.0 + 1e-4,
                    "{std:?} {} vs {}",
                    m.angle,
                    n.angle
                );
            }
            // Quantised angles must not change who matches whom.
            let s = Matcher::new(&v.template).score_template(&w.template);
            assert!(s > 0.3, "{std:?} self score after round trip {s}");
        }
        // Re-encoding the decoded record is byte-identical.
        assert_eq!(back.encode(std).expect("re-encode"), bytes);
    }
}

#[test]
fn own_template_round_trip() {
    let t = template("fvc2000/DB2_B", 105, 2);
    let back = FingerTemplate::from_bytes(&t.to_bytes().expect("encode")).expect("decode");
    assert_eq!(back.minutiae.len(), t.minutiae.len());
    assert_eq!(
        (back.width, back.height, back.dpi),
        (t.width, t.height, t.dpi)
    );
}

#[test]
fn every_truncation_is_a_typed_error() {
    let r = record();
    for std in [Standard::Iso19794_2_2005, Standard::Ansi378_2004] {
        let bytes = r.encode(std).expect("encode");
        for n in 0..bytes.len() {
            assert!(
                FingerRecord::decode(&bytes[..n], std).is_err(),
                "{std:?} prefix {n} accepted"
            );
        }
    }
    let own = r.views[0].template.to_bytes().expect("encode");
    for n in 0..own.len() {
        assert!(
            FingerTemplate::from_bytes(&own[..n]).is_err(),
            "own prefix {n} accepted"
        );
    }
}

#[test]
fn random_and_mutated_bytes_never_panic() {
    // xorshift: deterministic, no extra dependency.
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let r = record();
    let valid = [
        r.encode(Standard::Iso19794_2_2005).expect("iso"),
        r.encode(Standard::Ansi378_2004).expect("ansi"),
        r.views[0].template.to_bytes().expect("own"),
    ];
    let mut decoded_ok = 0;
    for round in 0..20_000 {
        let mut bytes = if round % 4 == 0 {
            (0..(rnd() % 300) as usize)
                .map(|_| rnd() as u8)
                .collect::<Vec<u8>>()
        } else {
            valid[round % 3].clone()
        };
        for _ in 0..1 + rnd() % 4 {
            if !bytes.is_empty() {
                let i = (rnd() as usize) % bytes.len();
                bytes[i] = rnd() as u8;
            }
        }
        for std in [Standard::Iso19794_2_2005, Standard::Ansi378_2004] {
            if let Ok(rec) = FingerRecord::decode(&bytes, std) {
                decoded_ok += 1;
                // Whatever decodes must be internally valid and re-encodable.
                rec.encode(std).expect("decoded record re-encodes");
            }
        }
        if let Ok(t) = FingerTemplate::from_bytes(&bytes) {
            t.validate().expect("decoded template validates");
        }
    }
    // Mutations of quality/angle bytes are legal: some must still decode.
    assert!(decoded_ok > 0);
}

#[test]
fn specific_defects_give_specific_errors() {
    let r = record();
    let iso = r.encode(Standard::Iso19794_2_2005).expect("iso");
    let ansi = r.encode(Standard::Ansi378_2004).expect("ansi");

    let mut bad = iso.clone();
    bad[0] = b'X';
    assert!(matches!(
        FingerRecord::decode(&bad, Standard::Iso19794_2_2005),
        Err(FingerError::BadMagic { .. })
    ));

    let mut bad = iso.clone();
    bad[5] = b'3';
    assert!(matches!(
        FingerRecord::decode(&bad, Standard::Iso19794_2_2005),
        Err(FingerError::UnsupportedVersion { .. })
    ));

    let mut longer = iso.clone();
    longer.push(0);
    assert!(matches!(
        FingerRecord::decode(&longer, Standard::Iso19794_2_2005),
        Err(FingerError::LengthMismatch { .. })
    ));

    // First minutia of the first view: x field at 24 + 4 (ISO), set x ≥ width.
    let mut bad = iso.clone();
    let x = (r.width + 5) | 0x4000;
    bad[28..30].copy_from_slice(&x.to_be_bytes());
    assert!(matches!(
        FingerRecord::decode(&bad, Standard::Iso19794_2_2005),
        Err(FingerError::OutOfRange {
            field: "minutia x",
            ..
        })
    ));

    // ANSI angle unit is 2°, so codes above 179 are invalid (26 + 4 + 4).
    let mut bad = ansi.clone();
    bad[34] = 200;
    assert!(matches!(
        FingerRecord::decode(&bad, Standard::Ansi378_2004),
        Err(FingerError::OutOfRange {
            field: "minutia angle",
            ..
        })
    ));

    // Minutia type 3 is reserved.
    let mut bad = iso.clone();
    bad[28] |= 0xC0;
    assert!(matches!(
        FingerRecord::decode(&bad, Standard::Iso19794_2_2005),
        Err(FingerError::OutOfRange {
            field: "minutia type",
            ..
        })
    ));

    // Finger position 11 does not exist.
    let mut bad = iso.clone();
    bad[24] = 11;
    assert!(matches!(
        FingerRecord::decode(&bad, Standard::Iso19794_2_2005),
        Err(FingerError::OutOfRange {
            field: "finger position",
            ..
        })
    ));
    assert!(FingerPosition::new(11).is_err());

    // Parsing ISO bytes as ANSI must fail cleanly (different header).
    assert!(FingerRecord::decode(&iso, Standard::Ansi378_2004).is_err());
}
