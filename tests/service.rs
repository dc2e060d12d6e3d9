//! The gRPC service as a caller sees it: the real `sinhtrac serve` binary on loopback, real models on
//! LFW images, a real gallery file, real statuses. Each test starts its own server in a temp folder.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use image::{DynamicImage, ImageFormat, RgbImage};
use sinhtrac_engine::fusion::{FusionModel, Inputs};
use sinhtrac_server::proto::biometrics_client::BiometricsClient;
use sinhtrac_server::proto::{self, biometric::Source};
use sinhtrac_server::service::errors::reason_of;
use sinhtrac_tests::{encode, fvc, lfw, png_with_forged_size, read, rgb};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic::{Code, Request, Status};

const BANK: &str = "key-bank-0123";
const BANK_READER: &str = "key-bank-reader-4567";
const INSURANCE: &str = "key-insurance-89ab";

struct Server {
    child: Child,
    addr: String,
    metrics: String,
    dir: PathBuf,
}

/// A scratch folder for one test's gallery, audit log and server log; removed when the test ends.
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Keep the folder of a failed test for its server log.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn temp_dir(name: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!("sinhtrac-svc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sinhtrac"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .arg("--gallery")
            .arg(dir.join("gallery.db"))
            .arg("--audit-log")
            .arg(dir.join("audit.jsonl"))
            .args(["--api-key", &format!("bank:{BANK}")])
            .args(["--api-key", &format!("bank:{BANK_READER}:reader")])
            .args(["--api-key", &format!("insurance:{INSURANCE}")])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
            .spawn()
            .expect("start sinhtrac serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (mut addr, mut metrics) = (None, None);
        while addr.is_none() || metrics.is_none() {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok(l) if l.starts_with("sinhtrac: listening on ") => {
                    addr = Some(l["sinhtrac: listening on ".len()..].to_string())
                }
                Ok(l) if l.starts_with("sinhtrac: metrics on ") => {
                    metrics =
                        Some(l["sinhtrac: metrics on http://".len()..].replace("/metrics", ""))
                }
                Ok(_) => {}
                Err(_) => panic!(
                    "server did not start: {}",
                    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
                ),
            }
        }
        Server {
            child,
            addr: addr.unwrap(),
            metrics: metrics.unwrap(),
            dir: dir.to_path_buf(),
        }
    }

    async fn client(&self, key: &str) -> Client {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Client {
            inner: BiometricsClient::new(channel).max_decoding_message_size(64 << 20),
            key: key.to_string(),
        }
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap()
    }

    fn audit_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that sends its API key.
#[derive(Clone)]
struct Client {
    inner: BiometricsClient<Channel>,
    key: String,
}

impl Client {
    fn req<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        if !self.key.is_empty() {
            r.metadata_mut()
                .insert("x-api-key", self.key.parse().unwrap());
        }
        r
    }
}

fn image(path: &Path) -> proto::Biometric {
    proto::Biometric {
        source: Some(Source::FaceImage(proto::Image { data: read(path) })),
        ..Default::default()
    }
}

fn bytes(data: Vec<u8>) -> proto::Biometric {
    proto::Biometric {
        source: Some(Source::FaceImage(proto::Image { data })),
        ..Default::default()
    }
}

fn template(data: Vec<u8>) -> proto::Biometric {
    proto::Biometric {
        source: Some(Source::Template(data)),
        ..Default::default()
    }
}

fn finger_bytes(data: Vec<u8>, position: u32) -> proto::Biometric {
    proto::Biometric {
        source: Some(Source::FingerImage(proto::FingerImage {
            data,
            position,
            dpi: 500,
        })),
        ..Default::default()
    }
}

/// FVC2002 DB1_B finger `finger`, impression `impression`, enrolled/probed at `position`.
fn finger(finger: u32, impression: u32, position: u32) -> proto::Biometric {
    finger_bytes(read(&fvc("fvc2002/DB1_B", finger, impression)), position)
}

fn enroll_req(id: &str, bio: Vec<proto::Biometric>) -> proto::EnrollRequest {
    proto::EnrollRequest {
        subject_id: id.into(),
        biometrics: bio,
        ..Default::default()
    }
}

fn verify_req(id: &str, probe: proto::Biometric) -> proto::VerifyRequest {
    proto::VerifyRequest {
        subject_id: id.into(),
        probe: Some(probe),
        ..Default::default()
    }
}

/// The response of an Identify call that must succeed.
async fn identified(c: &mut Client, msg: proto::IdentifyRequest) -> proto::IdentifyResponse {
    let r = c.req(msg);
    c.inner.identify(r).await.unwrap().into_inner()
}

/// The decision of a Verify call that must succeed.
async fn verify_decision(c: &mut Client, msg: proto::VerifyRequest) -> proto::Decision {
    let r = c.req(msg);
    c.inner
        .verify(r)
        .await
        .unwrap()
        .into_inner()
        .decision
        .unwrap()
}

#[track_caller]
fn assert_status<T: std::fmt::Debug>(r: Result<T, Status>, code: Code, reason: &str) {
    let e = r.expect_err("expected an error status");
    assert_eq!(e.code(), code, "{e:?}");
    assert_eq!(reason_of(&e).as_deref(), Some(reason), "{e:?}");
}

async fn enroll(c: &mut Client, id: &str, path: &Path) -> proto::EnrollResponse {
    let r = c.req(enroll_req(id, vec![image(path)]));
    c.inner.enroll(r).await.unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_verify_compare_identify_liveness_and_gallery_reads() {
    let dir = temp_dir("e2e");
    let server = Server::start(&dir, &[]);
    let mut c = server.client(BANK).await;

    let e = enroll(&mut c, "VN-001", &lfw("Colin_Powell", 40)).await;
    assert_eq!(e.templates.len(), 1);
    assert!(!e.request_id.is_empty());
    enroll(&mut c, "VN-002", &lfw("Tony_Blair", 18)).await;
    enroll(&mut c, "VN-003", &lfw("Serena_Williams", 1)).await;

    // 1:1 genuine and impostor, decisions at the configured FMR with the calibrated threshold.
    let r = c.req(proto::VerifyRequest {
        check_liveness: true,
        ..verify_req("VN-001", image(&lfw("Colin_Powell", 49)))
    });
    let v = c.inner.verify(r).await.unwrap().into_inner();
    let d = v.decision.unwrap();
    assert!(d.r#match, "{d:?}");
    assert_eq!(d.target_fmr, 1e-4);
    assert!(d.score >= d.threshold && d.threshold > 0.3);
    assert_eq!(d.model_id, "mobilefacenet-128");
    assert!(v.liveness.is_some() && v.probe_quality.is_some());
    let d = verify_decision(&mut c, verify_req("VN-001", image(&lfw("Tony_Blair", 32)))).await;
    assert!(!d.r#match, "{d:?}");

    // Compare (no gallery) returns templates; a template is a valid probe afterwards.
    let r = c.req(proto::CompareRequest {
        a: Some(image(&lfw("Serena_Williams", 3))),
        b: Some(image(&lfw("Serena_Williams", 14))),
        ..Default::default()
    });
    let cmp = c.inner.compare(r).await.unwrap().into_inner();
    assert!(cmp.decision.unwrap().r#match);
    assert!(
        verify_decision(
            &mut c,
            verify_req("VN-003", template(cmp.template_a.clone()))
        )
        .await
        .r#match
    );

    // 1:N: the right subject first; an unknown face finds nobody above the threshold.
    let r = c.req(proto::IdentifyRequest {
        probe: Some(image(&lfw("Tony_Blair", 48))),
        top_k: 5,
        ..Default::default()
    });
    let id = c.inner.identify(r).await.unwrap().into_inner();
    assert_eq!(id.candidates[0].subject_id, "VN-002");
    assert_eq!(id.candidates[0].rank, 1);
    assert_eq!(id.gallery_size, 3);
    assert!(id.candidates.iter().all(|c| c.score >= id.threshold));
    let r = c.req(proto::IdentifyRequest {
        probe: Some(template(cmp.template_a)),
        mode: proto::SearchMode::Approximate as i32,
        ..Default::default()
    });
    let id = c.inner.identify(r).await.unwrap().into_inner();
    assert_eq!(id.candidates[0].subject_id, "VN-003");
    let r = c.req(proto::IdentifyRequest {
        probe: Some(image(&lfw("Jennifer_Aniston", 1))),
        ..Default::default()
    });
    assert!(c
        .inner
        .identify(r)
        .await
        .unwrap()
        .into_inner()
        .candidates
        .is_empty());

    // Liveness on the bona fide and attack samples.
    let pad = sinhtrac_tests::datasets().join("face_pad_samples");
    let live = |name: &str| {
        let mut c = c.clone();
        let data = read(&pad.join(name));
        async move {
            let r = c.req(proto::CheckLivenessRequest {
                image: Some(proto::Image { data }),
                ..Default::default()
            });
            c.inner
                .check_liveness(r)
                .await
                .unwrap()
                .into_inner()
                .liveness
                .unwrap()
        }
    };
    assert!(live("minivision_image_T1.jpg").await.live);
    assert!(!live("minivision_image_F1.jpg").await.live);

    // Reads, paging, stats, delete.
    let r = c.req(proto::GetSubjectRequest {
        subject_id: "VN-001".into(),
    });
    let s = c.inner.get_subject(r).await.unwrap().into_inner();
    assert_eq!(s.templates.len(), 1);
    assert!(
        s.templates[0].template.is_empty(),
        "reads never return biometric data"
    );
    let r = c.req(proto::ListSubjectsRequest {
        page_size: 2,
        page_token: String::new(),
    });
    let p1 = c.inner.list_subjects(r).await.unwrap().into_inner();
    assert_eq!(p1.subjects.len(), 2);
    let r = c.req(proto::ListSubjectsRequest {
        page_size: 2,
        page_token: p1.next_page_token,
    });
    let p2 = c.inner.list_subjects(r).await.unwrap().into_inner();
    assert_eq!(p2.subjects.len(), 1);
    assert!(p2.next_page_token.is_empty());
    let r = c.req(proto::DeleteSubjectRequest {
        subject_id: "VN-002".into(),
        ..Default::default()
    });
    assert_eq!(
        c.inner
            .delete_subject(r)
            .await
            .unwrap()
            .into_inner()
            .templates_removed,
        1
    );
    let r = c.req(proto::GalleryStatsRequest {});
    let st = c.inner.gallery_stats(r).await.unwrap().into_inner();
    assert_eq!((st.subjects, st.indexed_face_templates), (2, 2));
    let r = c.req(proto::IdentifyRequest {
        probe: Some(image(&lfw("Tony_Blair", 48))),
        ..Default::default()
    });
    let id = c.inner.identify(r).await.unwrap().into_inner();
    assert!(id.candidates.iter().all(|c| c.subject_id != "VN-002"));

    // The audit log has every call, with decisions and request ids, and no biometric data.
    let audit = server.audit_lines();
    assert!(audit.len() >= 14, "{}", audit.len());
    let verify = audit.iter().find(|l| l["operation"] == "Verify").unwrap();
    assert_eq!(verify["subject_id"], "VN-001");
    assert_eq!(verify["decision"], true);
    assert!(verify["threshold"].as_f64().unwrap() > 0.3);
    let text = std::fs::read_to_string(server.dir.join("audit.jsonl")).unwrap();
    assert!(!text.contains("STPL") && text.len() < 20_000);

    // Metrics count the calls.
    let metrics = http_get(&server.metrics, "/metrics").await;
    assert!(
        metrics.contains("sinhtrac_requests_total{code=\"OK\",method=\"Verify\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("sinhtrac_stage_seconds_bucket{stage=\"extract\""));
}

async fn http_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// A template's bytes with the CRC recomputed after `edit`.
fn edited(mut t: Vec<u8>, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let n = t.len() - 4;
    t.truncate(n);
    edit(&mut t);
    let crc = crc32fast::hash(&t);
    t.extend_from_slice(&crc.to_le_bytes());
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_precise_status_and_leaves_the_gallery_intact() {
    let dir = temp_dir("errors");
    let server = Server::start(&dir, &[]);
    let mut c = server.client(BANK).await;
    let e = enroll(&mut c, "CLAIM-1", &lfw("Colin_Powell", 40)).await;
    let good = e.templates[0].template.clone();
    assert!(good.starts_with(b"STPL"));
    let probe = lfw("Colin_Powell", 49);

    // Images: corrupt, empty, decompression-bomb header, no face.
    let mut corrupt = read(&probe);
    corrupt.truncate(corrupt.len() / 2);
    let v = |b: proto::Biometric| c.req(verify_req("CLAIM-1", b));
    assert_status(
        c.inner.clone().verify(v(bytes(corrupt))).await,
        Code::InvalidArgument,
        "IMAGE_CORRUPT",
    );
    assert_status(
        c.inner.clone().verify(v(bytes(vec![]))).await,
        Code::InvalidArgument,
        "IMAGE_EMPTY",
    );
    assert_status(
        c.inner
            .clone()
            .verify(v(bytes(png_with_forged_size(60_000, 60_000))))
            .await,
        Code::InvalidArgument,
        "IMAGE_TOO_LARGE",
    );
    let blank = encode(
        &DynamicImage::ImageRgb8(RgbImage::from_pixel(320, 240, image::Rgb([128, 128, 128]))),
        ImageFormat::Png,
    );
    assert_status(
        c.inner.clone().verify(v(bytes(blank))).await,
        Code::InvalidArgument,
        "NO_FACE",
    );

    // Templates: wrong version, corrupt, NaN, wrong dimension, not a template.
    let header = 4 + 2 + 1 + 1 + 1 + good[8] as usize + 32;
    let dim_at = header;
    let qlen = u16::from_le_bytes([good[dim_at + 4], good[dim_at + 5]]) as usize;
    let vec_at = dim_at + 6 + qlen;
    let v2 = edited(good.clone(), |t| {
        t[4..6].copy_from_slice(&2u16.to_le_bytes())
    });
    assert_status(
        c.inner.clone().verify(v(template(v2))).await,
        Code::InvalidArgument,
        "TEMPLATE_VERSION",
    );
    let mut flipped = good.clone();
    flipped[vec_at] ^= 0x55;
    assert_status(
        c.inner.clone().verify(v(template(flipped))).await,
        Code::InvalidArgument,
        "TEMPLATE_CORRUPT",
    );
    let nan = edited(good.clone(), |t| {
        t[vec_at..vec_at + 4].copy_from_slice(&f32::NAN.to_le_bytes())
    });
    assert_status(
        c.inner.clone().verify(v(template(nan))).await,
        Code::InvalidArgument,
        "TEMPLATE_NON_FINITE",
    );
    let short = {
        let mut t = sinhtrac_engine::template::Template::decode(&good).unwrap();
        t.payload = sinhtrac_engine::template::Payload::Vector(vec![0.125; 64]);
        t.encode()
    };
    assert_status(
        c.inner.clone().verify(v(template(short))).await,
        Code::InvalidArgument,
        "TEMPLATE_DIMENSION",
    );
    assert_status(
        c.inner
            .clone()
            .verify(v(template(b"not a template".to_vec())))
            .await,
        Code::InvalidArgument,
        "TEMPLATE_BAD_MAGIC",
    );

    // Subjects: unknown, duplicate id, same face under another id (policy reject / flag), bad id.
    let r = c.req(verify_req("NOBODY", image(&probe)));
    assert_status(c.inner.verify(r).await, Code::NotFound, "SUBJECT_NOT_FOUND");
    let r = c.req(enroll_req("CLAIM-1", vec![image(&lfw("Tony_Blair", 18))]));
    assert_status(
        c.inner.enroll(r).await,
        Code::AlreadyExists,
        "SUBJECT_EXISTS",
    );
    let r = c.req(enroll_req("CLAIM-2", vec![image(&probe)]));
    assert_status(
        c.inner.enroll(r).await,
        Code::AlreadyExists,
        "DUPLICATE_IDENTITY",
    );
    let r = c.req(proto::EnrollRequest {
        duplicate_policy: proto::DuplicatePolicy::Flag as i32,
        ..enroll_req("CLAIM-2", vec![image(&probe)])
    });
    let flagged = c.inner.enroll(r).await.unwrap().into_inner();
    assert_eq!(flagged.possible_duplicates[0].subject_id, "CLAIM-1");
    let r = c.req(enroll_req("bad id with spaces", vec![image(&probe)]));
    assert_status(
        c.inner.enroll(r).await,
        Code::InvalidArgument,
        "INVALID_SUBJECT_ID",
    );
    let r = c.req(enroll_req("CLAIM-3", vec![]));
    assert_status(
        c.inner.enroll(r).await,
        Code::InvalidArgument,
        "INVALID_REQUEST",
    );
    let r = c.req(enroll_req("CLAIM-3", vec![finger_bytes(vec![1, 2, 3], 2)]));
    assert_status(
        c.inner.enroll(r).await,
        Code::InvalidArgument,
        "IMAGE_UNSUPPORTED_FORMAT",
    );
    // A truncated fingerprint TIFF.
    let tif = read(&fvc("fvc2002/DB1_B", 101, 1));
    let r = c.req(enroll_req(
        "CLAIM-3",
        vec![finger_bytes(tif[..tif.len() / 3].to_vec(), 2)],
    ));
    assert_status(
        c.inner.enroll(r).await,
        Code::InvalidArgument,
        "IMAGE_CORRUPT",
    );
    let r = c.req(proto::VerifyRequest {
        target_fmr: 0.5,
        ..verify_req("CLAIM-1", image(&probe))
    });
    assert_status(
        c.inner.verify(r).await,
        Code::InvalidArgument,
        "INVALID_REQUEST",
    );

    // Keys: none, unknown, read-only key writing.
    let mut anon = server.client("").await;
    let r = anon.req(proto::GalleryStatsRequest {});
    assert_status(
        anon.inner.gallery_stats(r).await,
        Code::Unauthenticated,
        "API_KEY_INVALID",
    );
    let mut wrong = server.client("guess").await;
    let r = wrong.req(proto::GalleryStatsRequest {});
    assert_status(
        wrong.inner.gallery_stats(r).await,
        Code::Unauthenticated,
        "API_KEY_INVALID",
    );
    let mut reader = server.client(BANK_READER).await;
    let r = reader.req(proto::DeleteSubjectRequest {
        subject_id: "CLAIM-1".into(),
        ..Default::default()
    });
    assert_status(
        reader.inner.delete_subject(r).await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    assert!(
        verify_decision(&mut reader, verify_req("CLAIM-1", image(&probe)))
            .await
            .r#match
    );

    // Nothing above changed the stored data: two subjects, both still verify.
    let r = c.req(proto::GalleryStatsRequest {});
    let st = c.inner.gallery_stats(r).await.unwrap().into_inner();
    assert_eq!(
        (st.subjects, st.face_templates, st.indexed_face_templates),
        (2, 2, 2)
    );
    for id in ["CLAIM-1", "CLAIM-2"] {
        assert!(
            verify_decision(&mut c, verify_req(id, image(&probe)))
                .await
                .r#match
        );
    }
    // Every refusal is audited with its reason.
    let audit = server.audit_lines();
    assert!(audit.iter().any(|l| l["reason"] == "DUPLICATE_IDENTITY"));
    assert!(audit.iter().any(|l| l["reason"] == "TEMPLATE_NON_FINITE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_face_policy_refuses_several_faces() {
    let dir = temp_dir("strict");
    let server = Server::start(&dir, &["--strict-faces"]);
    let mut c = server.client(BANK).await;
    let (a, b) = (rgb(&lfw("Colin_Powell", 40)), rgb(&lfw("Tony_Blair", 18)));
    let mut two = RgbImage::new(a.width() + b.width(), a.height().max(b.height()));
    image::imageops::replace(&mut two, &a, 0, 0);
    image::imageops::replace(&mut two, &b, a.width() as i64, 0);
    let r = c.req(enroll_req(
        "TWO",
        vec![bytes(encode(
            &DynamicImage::ImageRgb8(two),
            ImageFormat::Png,
        ))],
    ));
    assert_status(
        c.inner.enroll(r).await,
        Code::InvalidArgument,
        "MULTIPLE_FACES",
    );
    let r = c.req(enroll_req("ONE", vec![image(&lfw("Colin_Powell", 40))]));
    c.inner.enroll(r).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_reach_another_tenants_gallery() {
    let dir = temp_dir("tenants");
    let server = Server::start(&dir, &[]);
    let mut bank = server.client(BANK).await;
    let mut ins = server.client(INSURANCE).await;
    enroll(&mut bank, "CUST-7", &lfw("Colin_Powell", 40)).await;
    let probe = lfw("Colin_Powell", 49);

    let r = ins.req(proto::GetSubjectRequest {
        subject_id: "CUST-7".into(),
    });
    assert_status(
        ins.inner.get_subject(r).await,
        Code::NotFound,
        "SUBJECT_NOT_FOUND",
    );
    let r = ins.req(verify_req("CUST-7", image(&probe)));
    assert_status(
        ins.inner.verify(r).await,
        Code::NotFound,
        "SUBJECT_NOT_FOUND",
    );
    let r = ins.req(proto::DeleteSubjectRequest {
        subject_id: "CUST-7".into(),
        ..Default::default()
    });
    assert_status(
        ins.inner.delete_subject(r).await,
        Code::NotFound,
        "SUBJECT_NOT_FOUND",
    );
    let r = ins.req(proto::IdentifyRequest {
        probe: Some(image(&probe)),
        ..Default::default()
    });
    assert!(ins
        .inner
        .identify(r)
        .await
        .unwrap()
        .into_inner()
        .candidates
        .is_empty());
    let r = ins.req(proto::ListSubjectsRequest::default());
    assert!(ins
        .inner
        .list_subjects(r)
        .await
        .unwrap()
        .into_inner()
        .subjects
        .is_empty());
    // The same subject id is free in the other tenant, and the same face is not a duplicate there.
    enroll(&mut ins, "CUST-7", &probe).await;
    // A sweep job of one tenant is invisible to the other.
    let r = bank.req(proto::StartDuplicateSweepRequest::default());
    let job = bank
        .inner
        .start_duplicate_sweep(r)
        .await
        .unwrap()
        .into_inner();
    let r = ins.req(proto::GetJobResultRequest {
        job_id: job.job_id.clone(),
    });
    assert_status(
        ins.inner.get_job_result(r).await,
        Code::NotFound,
        "JOB_NOT_FOUND",
    );

    assert!(
        verify_decision(&mut bank, verify_req("CUST-7", image(&probe)))
            .await
            .r#match
    );
    let r = bank.req(proto::GalleryStatsRequest {});
    assert_eq!(
        bank.inner
            .gallery_stats(r)
            .await
            .unwrap()
            .into_inner()
            .subjects,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_enrolment_and_duplicate_sweep() {
    let dir = temp_dir("sweep");
    let server = Server::start(&dir, &["--duplicate-policy", "allow"]);
    let mut c = server.client(BANK).await;
    let items = vec![
        enroll_req("P-1", vec![image(&lfw("Colin_Powell", 40))]),
        enroll_req("P-2", vec![image(&lfw("Tony_Blair", 18))]),
        enroll_req("P-3", vec![bytes(b"garbage".to_vec())]),
        // The same person under a second identity: the fraud a sweep must find.
        enroll_req("P-4", vec![image(&lfw("Colin_Powell", 49))]),
        enroll_req("P-5", vec![image(&lfw("Serena_Williams", 1))]),
        // A profile view fails the enrolment quality gate.
        enroll_req("P-6", vec![image(&lfw("Colin_Powell", 71))]),
    ];
    let r = c.req(tokio_stream::iter(items));
    let batch = c.inner.enroll_batch(r).await.unwrap().into_inner();
    assert_eq!((batch.enrolled, batch.failed), (4, 2), "{:?}", batch.items);
    assert_eq!(batch.items[2].reason, "IMAGE_UNSUPPORTED_FORMAT");
    assert_eq!(batch.items[5].reason, "LOW_QUALITY");
    // Every item is audited on its own, with its outcome.
    let audit = server.audit_lines();
    let items: Vec<_> = audit
        .iter()
        .filter(|l| l["operation"] == "EnrollBatchItem")
        .collect();
    assert_eq!(items.len(), 6);
    assert_eq!(items[5]["subject_id"], "P-6");
    assert_eq!(items[5]["reason"], "LOW_QUALITY");
    assert_eq!(items[0]["status"], "OK");
    assert_eq!(batch.items[2].code, Code::InvalidArgument as i32);

    let r = c.req(proto::StartDuplicateSweepRequest::default());
    let job = c.inner.start_duplicate_sweep(r).await.unwrap().into_inner();
    let r = c.req(proto::WatchJobRequest {
        job_id: job.job_id.clone(),
    });
    let mut stream = c.inner.watch_job(r).await.unwrap().into_inner();
    let mut last = None;
    while let Some(j) = stream.message().await.unwrap() {
        last = Some(j);
    }
    assert_eq!(last.unwrap().state, proto::JobState::Succeeded as i32);
    let r = c.req(proto::GetJobResultRequest { job_id: job.job_id });
    let result = c.inner.get_job_result(r).await.unwrap().into_inner();
    assert_eq!(result.templates_swept, 4);
    assert_eq!(result.pairs.len(), 1, "{:?}", result.pairs);
    let p = &result.pairs[0];
    let mut pair = [p.subject_a.as_str(), p.subject_b.as_str()];
    pair.sort();
    assert_eq!(pair, ["P-1", "P-4"]);
    assert!(p.score >= result.threshold);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_false_match_rate_sets_the_threshold() {
    let pair = || proto::CompareRequest {
        a: Some(image(&lfw("Colin_Powell", 40))),
        b: Some(image(&lfw("Colin_Powell", 49))),
        ..Default::default()
    };
    let mut thresholds = Vec::new();
    for fmr in ["1e-3", "1e-5"] {
        let dir = temp_dir(&format!("fmr{fmr}"));
        let server = Server::start(&dir, &["--target-fmr", fmr]);
        let mut c = server.client(BANK).await;
        let d = c
            .inner
            .compare(c.req(pair()))
            .await
            .unwrap()
            .into_inner()
            .decision
            .unwrap();
        assert_eq!(d.target_fmr, fmr.parse::<f64>().unwrap());
        thresholds.push(d.threshold);
        // A request may ask for another calibrated point.
        let r = c.req(proto::CompareRequest {
            target_fmr: 1e-2,
            ..pair()
        });
        let d2 = c
            .inner
            .compare(r)
            .await
            .unwrap()
            .into_inner()
            .decision
            .unwrap();
        assert_eq!(d2.target_fmr, 1e-2);
        assert!(d2.threshold < d.threshold);
        let audit = server.audit_lines();
        assert_eq!(
            audit[0]["target_fmr"].as_f64(),
            Some(fmr.parse::<f64>().unwrap())
        );
    }
    assert!(thresholds[1] > thresholds[0] + 0.05, "{thresholds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_shed_and_deadlines_stop_work() {
    let dir = temp_dir("limits");
    // Calls without a grpc-timeout get the server's 100 ms default deadline, so the server's own
    // deadline is tested, not the client's timer (which tonic also arms from grpc-timeout and which
    // would race the server's answer).
    let server = Server::start(
        &dir,
        &[
            "--workers",
            "1",
            "--queue-depth",
            "1",
            "--default-deadline-ms",
            "100",
        ],
    );
    let c = server.client(BANK).await;
    let unhurried = |c: &Client, m: proto::CompareRequest| {
        let mut r = c.req(m);
        r.set_timeout(Duration::from_secs(60));
        r
    };
    // Large images keep the one worker busy for a while.
    let heavy_compare = |side: u32| {
        let img = image::imageops::resize(
            &rgb(&lfw("Colin_Powell", 40)),
            side,
            side,
            image::imageops::FilterType::Triangle,
        );
        let big = encode(&DynamicImage::ImageRgb8(img), ImageFormat::Jpeg);
        proto::CompareRequest {
            a: Some(bytes(big.clone())),
            b: Some(bytes(big)),
            check_liveness_a: true,
            ..Default::default()
        }
    };
    let heavy = heavy_compare(2400);
    let mut calls = Vec::new();
    for _ in 0..8 {
        let mut c = c.clone();
        let r = unhurried(&c, heavy.clone());
        calls.push(tokio::spawn(async move { c.inner.compare(r).await }));
    }
    let mut ok = 0;
    let mut shed = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
                assert_eq!(reason_of(&e).as_deref(), Some("OVERLOADED"));
                shed += 1;
            }
        }
    }
    assert!(ok >= 1 && shed >= 1, "ok {ok} shed {shed}");

    // While the worker is busy, a call that cannot start before its deadline gets DEADLINE_EXCEEDED.
    // The busy call must outlast the 100 ms default deadline by a wide margin on a fast, idle machine
    // (the 2400-px compare above can finish in ~130 ms there), so it decodes and downsizes two
    // 4800-px images: four times the pixels.
    let mut busy = c.clone();
    let r = unhurried(&busy, heavy_compare(4800));
    let running = tokio::spawn(async move { busy.inner.compare(r).await });
    // Long enough for the megabytes of the busy call to arrive and take the worker.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut hurried = c.clone();
    let r = hurried.req(proto::GalleryStatsRequest {});
    assert_status(
        hurried.inner.gallery_stats(r).await,
        Code::DeadlineExceeded,
        "DEADLINE",
    );
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_drains_requests_in_flight_and_keeps_the_gallery() {
    let dir = temp_dir("shutdown");
    let mut server = Server::start(&dir, &["--workers", "1"]);
    let mut c = server.client(BANK).await;
    enroll(&mut c, "KEEP-1", &lfw("Colin_Powell", 40)).await;
    let mut calls = Vec::new();
    for _ in 0..4 {
        let mut c = c.clone();
        let r = c.req(proto::VerifyRequest {
            check_liveness: true,
            ..verify_req("KEEP-1", image(&lfw("Colin_Powell", 49)))
        });
        calls.push(tokio::spawn(async move { c.inner.verify(r).await }));
    }
    tokio::time::sleep(Duration::from_millis(40)).await;
    let status = tokio::task::spawn_blocking(move || {
        let s = server.terminate();
        (s, server)
    });
    for call in calls {
        let v = call
            .await
            .unwrap()
            .expect("in-flight request completes during shutdown");
        assert!(v.into_inner().decision.unwrap().r#match);
    }
    let (exit, server) = status.await.unwrap();
    assert!(exit.success(), "{exit:?}");
    drop(server);
    let server = Server::start(&dir, &[]);
    let mut c = server.client(BANK).await;
    assert!(
        verify_decision(
            &mut c,
            verify_req("KEEP-1", image(&lfw("Colin_Powell", 71)))
        )
        .await
        .r#match
    );
    let audit = server.audit_lines();
    assert_eq!(
        audit.iter().filter(|l| l["operation"] == "Verify").count(),
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reflection_and_tls() {
    let dir = temp_dir("tls");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let cert_path = dir.join("cert.pem").display().to_string();
    let key_path = dir.join("key.pem").display().to_string();
    let server = Server::start(&dir, &["--tls-cert", &cert_path, "--tls-key", &key_path]);
    let channel = Channel::from_shared(format!("https://{}", server.addr))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(cert.cert.pem()))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let h = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "sinhtrac.v1.Biometrics".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        h.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let mut refl = ServerReflectionClient::new(channel.clone());
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut resp = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let msg = resp.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else {
        panic!("unexpected reflection reply");
    };
    assert!(list
        .service
        .iter()
        .any(|s| s.name == "sinhtrac.v1.Biometrics"));
    let mut c = Client {
        inner: BiometricsClient::new(channel),
        key: BANK.into(),
    };
    let r = c.req(proto::GalleryStatsRequest {});
    c.inner.gallery_stats(r).await.unwrap();
    // Plain-text gRPC to a TLS port fails.
    let plain = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await;
    if let Ok(ch) = plain {
        let mut p = Client {
            inner: BiometricsClient::new(ch),
            key: BANK.into(),
        };
        let r = p.req(proto::GalleryStatsRequest {});
        assert!(p.inner.gallery_stats(r).await.is_err());
    }
}

/// The Python example client (examples/python, stubs generated by scripts/setup.sh) against a real
/// server: both flows, with the decisions a caller would act on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_example_flows_insurance_claim_and_bank_ekyc() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = std::env::var_os("SINHTRAC_EXAMPLES_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv-examples/bin/python"));
    let examples = root.join("examples/python");
    assert!(
        python.exists()
            && examples
                .join("gen/sinhtrac/v1/sinhtrac_pb2_grpc.py")
                .exists(),
        "the examples' Python venv or stubs are missing: run scripts/setup.sh"
    );
    let dir = temp_dir("python");
    let server = Server::start(&dir, &[]);
    let mut ins = server.client(INSURANCE).await;
    enroll(&mut ins, "VN-1", &lfw("Colin_Powell", 40)).await;
    enroll(&mut ins, "VN-2", &lfw("Tony_Blair", 18)).await;
    let r = ins.req(proto::EnrollRequest {
        duplicate_policy: proto::DuplicatePolicy::Allow as i32,
        ..enroll_req("VN-9", vec![image(&lfw("Colin_Powell", 49))])
    });
    ins.inner.enroll(r).await.unwrap();
    let r = ins.req(enroll_req(
        "VN-3",
        vec![image(&lfw("Hugo_Chavez", 2)), finger(103, 1, 2)],
    ));
    ins.inner.enroll(r).await.unwrap();
    let mut bank = server.client(BANK).await;
    enroll(&mut bank, "CUST-1", &lfw("Tony_Blair", 18)).await;

    let run = |script: &str, key: &str, args: &[&Path], flags: &[&str]| -> Vec<serde_json::Value> {
        let mut cmd = Command::new(&python);
        cmd.current_dir(&examples)
            .arg(script)
            .args(["--addr", &server.addr, "--api-key", key]);
        for (flag, path) in flags.iter().zip(args) {
            cmd.arg(flag).arg(path);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let outcome = |lines: &[serde_json::Value]| lines.last().unwrap().clone();

    // Genuine claimant, no other identity: pay.
    let tb = lfw("Tony_Blair", 32);
    let lines = run(
        "insurance_claim.py",
        INSURANCE,
        &[Path::new("VN-2"), &tb],
        &["--claimant", "--photo"],
    );
    assert_eq!(lines[0]["match"], true, "{lines:?}");
    assert_eq!(outcome(&lines)["pay"], true, "{lines:?}");
    // Claimant also enrolled as VN-9: refer, and the sweep finds the pair.
    let cp = lfw("Colin_Powell", 71);
    let mut cmd_lines = run(
        "insurance_claim.py",
        INSURANCE,
        &[Path::new("VN-1"), &cp],
        &["--claimant", "--photo"],
    );
    assert_eq!(outcome(&cmd_lines)["pay"], false);
    let identify = cmd_lines.remove(1);
    assert_eq!(
        identify["other_identities"],
        serde_json::json!(["VN-9"]),
        "{identify}"
    );

    // With a fingerprint taken at the office, verification and identification are fused.
    let (hc, print) = (
        lfw("Hugo_Chavez", 27),
        format!("2:{}", fvc("fvc2002/DB1_B", 103, 3).display()),
    );
    let lines = run(
        "insurance_claim.py",
        INSURANCE,
        &[Path::new("VN-3"), &hc, Path::new(&print)],
        &["--claimant", "--photo", "--finger"],
    );
    assert_eq!(lines[0]["model"], "fusion-mobilefacenet-128-classical");
    assert_eq!(
        lines[0]["probe_scores"][1][0], "MODALITY_FINGER",
        "{lines:?}"
    );
    assert_eq!(lines[1]["model"], "fusion-mobilefacenet-128-classical");
    assert_eq!(lines[1]["candidates"][0][0], "VN-3", "{lines:?}");
    assert_eq!(outcome(&lines)["pay"], true, "{lines:?}");

    // Bank: a new live customer is enrolled; a printed-photo spoof is refused; an existing customer
    // is found.
    let pad = sinhtrac_tests::datasets().join("face_pad_samples");
    let (s1, s3) = (lfw("Serena_Williams", 3), lfw("Serena_Williams", 1));
    let lines = run(
        "bank_ekyc.py",
        BANK,
        &[Path::new("NEW-1"), &s1, &s3],
        &["--customer", "--selfie", "--card-photo"],
    );
    assert_eq!(outcome(&lines)["onboarded"], true, "{lines:?}");
    let spoof = pad.join("minivision_image_F1.jpg");
    let lines = run(
        "bank_ekyc.py",
        BANK,
        &[Path::new("NEW-2"), &spoof, &s3],
        &["--customer", "--selfie", "--card-photo"],
    );
    assert_eq!(lines[0]["live"], false, "{lines:?}");
    assert_eq!(outcome(&lines)["onboarded"], false);
    let (t1, t2) = (lfw("Tony_Blair", 32), lfw("Tony_Blair", 48));
    let lines = run(
        "bank_ekyc.py",
        BANK,
        &[Path::new("NEW-3"), &t1, &t2],
        &["--customer", "--selfie", "--card-photo"],
    );
    assert_eq!(outcome(&lines)["onboarded"], false, "{lines:?}");
    assert!(outcome(&lines)["why"].as_str().unwrap().contains("CUST-1"));

    let r = bank.req(proto::GalleryStatsRequest {});
    assert_eq!(
        bank.inner
            .gallery_stats(r)
            .await
            .unwrap()
            .into_inner()
            .subjects,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingerprints_enrol_verify_compare_and_identify() {
    let dir = temp_dir("finger");
    let mut server = Server::start(&dir, &[]);
    let mut c = server.client(BANK).await;
    const RIGHT_INDEX: u32 = 2;
    // One subject with a face and a fingerprint, others with fingerprints only (FVC2002 DB1_B).
    let r = c.req(enroll_req(
        "PENSION-101",
        vec![image(&lfw("Aaron_Peirsol", 1)), finger(101, 1, RIGHT_INDEX)],
    ));
    let enrolled = c.inner.enroll(r).await.unwrap().into_inner();
    let kinds: Vec<i32> = enrolled.templates.iter().map(|t| t.modality).collect();
    assert_eq!(
        kinds,
        [proto::Modality::Face as i32, proto::Modality::Finger as i32]
    );
    let finger_info = &enrolled.templates[1];
    let finger_template_of_101 = proto::Biometric {
        finger_position: RIGHT_INDEX,
        ..template(finger_info.template.clone())
    };
    assert_eq!(finger_info.model_id, "finger-classical");
    let q = finger_info.quality.unwrap();
    assert!(q.minutiae >= 12 && q.finger_quality > 0.0, "{q:?}");
    for f in 102..=105 {
        let r = c.req(enroll_req(
            &format!("PENSION-{f}"),
            vec![finger(f, 1, RIGHT_INDEX)],
        ));
        c.inner.enroll(r).await.unwrap();
    }
    let stats = c
        .inner
        .gallery_stats(c.req(proto::GalleryStatsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stats.subjects, stats.finger_templates), (5, 5));

    // 1:1 with another impression of the same finger: a match at the configured finger FMR (1e-3).
    let d = verify_decision(
        &mut c,
        verify_req("PENSION-101", finger(101, 2, RIGHT_INDEX)),
    )
    .await;
    assert!(d.r#match, "{d:?}");
    assert_eq!(
        (d.model_id.as_str(), d.target_fmr),
        ("finger-classical", 1e-3)
    );
    assert!(d.calibration.contains("FVC"), "{}", d.calibration);
    // Another person's finger: no match.
    let d = verify_decision(
        &mut c,
        verify_req("PENSION-101", finger(106, 2, RIGHT_INDEX)),
    )
    .await;
    assert!(!d.r#match && d.score < d.threshold, "{d:?}");
    // The right finger presented as another finger position: not compared, so no template.
    let r = c.req(verify_req("PENSION-101", finger(101, 2, 7)));
    assert_status(
        c.inner.verify(r).await,
        Code::FailedPrecondition,
        "TEMPLATE_MODEL_MISMATCH",
    );
    // The face still verifies the same subject.
    let d = verify_decision(
        &mut c,
        verify_req("PENSION-101", image(&lfw("Aaron_Peirsol", 3))),
    )
    .await;
    assert!(d.r#match && d.model_id == "mobilefacenet-128", "{d:?}");

    // Face + fingerprint fused (sum of calibrated log-likelihood ratios): the genuine pair is accepted
    // with both scores reported; a genuine face with an impostor finger scores lower than with the
    // genuine finger; two impressions of one finger are not two fingers.
    let fused = |face: u32, finger_id: u32| proto::VerifyRequest {
        additional_probes: vec![finger(finger_id, 3, RIGHT_INDEX)],
        ..verify_req("PENSION-101", image(&lfw("Aaron_Peirsol", face)))
    };
    let genuine = c
        .inner
        .verify(c.req(fused(3, 101)))
        .await
        .unwrap()
        .into_inner();
    let d = genuine.decision.unwrap();
    assert!(d.r#match, "{d:?}");
    assert_eq!(d.model_id, "fusion-mobilefacenet-128-classical");
    assert_eq!(d.target_fmr, 1e-4);
    let kinds: Vec<i32> = genuine.probe_scores.iter().map(|p| p.modality).collect();
    assert_eq!(
        kinds,
        [proto::Modality::Face as i32, proto::Modality::Finger as i32]
    );
    let mixed = c
        .inner
        .verify(c.req(fused(3, 106)))
        .await
        .unwrap()
        .into_inner();
    assert!(mixed.decision.unwrap().score < d.score);
    // Two impressions of one finger are not two fingers (their scores are not independent).
    let r = c.req(proto::VerifyRequest {
        additional_probes: vec![finger(101, 3, RIGHT_INDEX), finger(101, 4, RIGHT_INDEX)],
        ..verify_req("PENSION-101", image(&lfw("Aaron_Peirsol", 3)))
    });
    assert_status(
        c.inner.verify(r).await,
        Code::InvalidArgument,
        "INVALID_REQUEST",
    );
    // One face at most (a best-of-several-faces would exceed the stated FMR and dodge liveness).
    let r = c.req(proto::VerifyRequest {
        additional_probes: vec![image(&lfw("Aaron_Peirsol", 4))],
        ..verify_req("PENSION-101", image(&lfw("Aaron_Peirsol", 3)))
    });
    assert_status(
        c.inner.verify(r).await,
        Code::InvalidArgument,
        "INVALID_REQUEST",
    );
    // Liveness runs on the face wherever it is among the probes; a finger template has none.
    let r = c.req(proto::VerifyRequest {
        check_liveness: true,
        additional_probes: vec![image(&lfw("Aaron_Peirsol", 3))],
        ..verify_req("PENSION-101", finger(101, 3, RIGHT_INDEX))
    });
    let live = c.inner.verify(r).await.unwrap().into_inner();
    assert!(
        live.liveness.is_some() && live.decision.is_some(),
        "{live:?}"
    );
    let r = c.req(proto::VerifyRequest {
        check_liveness: true,
        ..verify_req("PENSION-101", finger_template_of_101.clone())
    });
    assert_status(
        c.inner.verify(r).await,
        Code::InvalidArgument,
        "MODALITY_UNSUPPORTED",
    );

    // 1:N: a fresh impression of finger 103 finds its subject first; an unknown finger finds no one.
    let r = c.req(proto::IdentifyRequest {
        probe: Some(finger(103, 4, RIGHT_INDEX)),
        top_k: 3,
        ..Default::default()
    });
    let found = c.inner.identify(r).await.unwrap().into_inner();
    assert_eq!(found.model_id, "finger-classical");
    assert_eq!(found.gallery_size, 5);
    assert_eq!(found.candidates[0].subject_id, "PENSION-103", "{found:?}");
    let r = c.req(proto::IdentifyRequest {
        probe: Some(finger(108, 3, RIGHT_INDEX)),
        ..Default::default()
    });
    let found = c.inner.identify(r).await.unwrap().into_inner();
    assert!(found.candidates.is_empty(), "{found:?}");

    // Compare without a gallery, and a finger template returned by Compare used as a probe.
    let r = c.req(proto::CompareRequest {
        a: Some(finger(104, 2, 0)),
        b: Some(finger(104, 5, 0)),
        ..Default::default()
    });
    let cmp = c.inner.compare(r).await.unwrap().into_inner();
    assert!(cmp.decision.unwrap().r#match);
    let finger_template = |position| proto::Biometric {
        finger_position: position,
        ..template(cmp.template_a.clone())
    };
    let d = verify_decision(
        &mut c,
        verify_req("PENSION-104", finger_template(RIGHT_INDEX)),
    )
    .await;
    assert!(d.r#match, "{d:?}");
    // 1:1 needs the position: best-of-all-fingers would multiply the false-match rate.
    let r = c.req(verify_req("PENSION-104", finger_template(0)));
    assert_status(
        c.inner.verify(r).await,
        Code::InvalidArgument,
        "INVALID_REQUEST",
    );
    let r = c.req(proto::CompareRequest {
        a: Some(finger(104, 2, 2)),
        b: Some(finger(104, 5, 7)),
        ..Default::default()
    });
    assert_status(
        c.inner.compare(r).await,
        Code::InvalidArgument,
        "INVALID_REQUEST",
    );

    // A second enrolment of finger 102 under another id is flagged for review (fingerprint matches
    // never refuse an enrolment on their own); then removed again.
    let r = c.req(enroll_req("PENSION-999", vec![finger(102, 6, RIGHT_INDEX)]));
    let flagged = c.inner.enroll(r).await.unwrap().into_inner();
    let dup = &flagged.possible_duplicates[0];
    assert_eq!(
        (dup.subject_id.as_str(), dup.modality, dup.rank),
        ("PENSION-102", proto::Modality::Finger as i32, 1)
    );
    let r = c.req(proto::DeleteSubjectRequest {
        subject_id: "PENSION-999".into(),
        ..Default::default()
    });
    c.inner.delete_subject(r).await.unwrap();
    // A fingerprint without its position cannot be enrolled.
    let r = c.req(enroll_req("PENSION-998", vec![finger(109, 1, 0)]));
    assert_status(
        c.inner.enroll(r).await,
        Code::InvalidArgument,
        "INVALID_REQUEST",
    );

    // Bad fingerprint input: typed statuses, gallery unchanged.
    let r = c.req(proto::CompareRequest {
        a: Some(image(&lfw("Aaron_Peirsol", 1))),
        b: Some(finger(101, 1, 0)),
        ..Default::default()
    });
    assert_status(
        c.inner.compare(r).await,
        Code::InvalidArgument,
        "MODALITY_UNSUPPORTED",
    );
    let r = c.req(proto::VerifyRequest {
        check_liveness: true,
        ..verify_req("PENSION-101", finger(101, 2, RIGHT_INDEX))
    });
    assert_status(
        c.inner.verify(r).await,
        Code::InvalidArgument,
        "MODALITY_UNSUPPORTED",
    );
    let blank = encode(
        &DynamicImage::ImageRgb8(RgbImage::from_pixel(300, 300, image::Rgb([200, 200, 200]))),
        ImageFormat::Png,
    );
    let r = c.req(enroll_req("PENSION-200", vec![finger_bytes(blank, 2)]));
    assert_status(
        c.inner.enroll(r).await,
        Code::InvalidArgument,
        "LOW_QUALITY",
    );
    let r = c.req(enroll_req("PENSION-200", vec![finger(107, 1, 11)]));
    assert_status(
        c.inner.enroll(r).await,
        Code::InvalidArgument,
        "INVALID_REQUEST",
    );
    let r = c.req(enroll_req("PENSION-200", vec![finger_bytes(Vec::new(), 2)]));
    assert_status(
        c.inner.enroll(r).await,
        Code::InvalidArgument,
        "IMAGE_EMPTY",
    );

    // Deleting a subject removes its finger from 1:N at once.
    let r = c.req(proto::DeleteSubjectRequest {
        subject_id: "PENSION-103".into(),
        ..Default::default()
    });
    c.inner.delete_subject(r).await.unwrap();
    let r = c.req(proto::IdentifyRequest {
        probe: Some(finger(103, 4, RIGHT_INDEX)),
        ..Default::default()
    });
    let found = c.inner.identify(r).await.unwrap().into_inner();
    assert!(found
        .candidates
        .iter()
        .all(|c| c.subject_id != "PENSION-103"));
    assert_eq!(found.gallery_size, 4);

    // The fingers come back after a restart (loaded from the gallery file).
    assert!(server.terminate().success());
    drop(server);
    let server = Server::start(&dir, &[]);
    let mut c = server.client(BANK).await;
    let r = c.req(proto::IdentifyRequest {
        probe: Some(finger(105, 3, RIGHT_INDEX)),
        ..Default::default()
    });
    let found = c.inner.identify(r).await.unwrap().into_inner();
    assert_eq!(found.gallery_size, 4);
    assert_eq!(found.candidates[0].subject_id, "PENSION-105", "{found:?}");
    // Another tenant sees none of them.
    let mut other = server.client(INSURANCE).await;
    let r = other.req(proto::IdentifyRequest {
        probe: Some(finger(105, 3, RIGHT_INDEX)),
        ..Default::default()
    });
    let found = other.inner.identify(r).await.unwrap().into_inner();
    assert!(found.candidates.is_empty() && found.gallery_size == 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_can_hold_leader_fingerprint_templates() {
    let dir = temp_dir("leader");
    let server = Server::start(&dir, &["--finger-extractor", "leader"]);
    let mut c = server.client(BANK).await;
    let r = c.req(enroll_req(
        "PENSION-101",
        vec![finger(101, 1, 2), image(&lfw("Aaron_Peirsol", 1))],
    ));
    let enrolled = c.inner.enroll(r).await.unwrap().into_inner();
    assert_eq!(enrolled.templates[0].model_id, "finger-leader");
    let d = verify_decision(&mut c, verify_req("PENSION-101", finger(101, 2, 2))).await;
    assert!(d.r#match && d.model_id == "finger-leader", "{d:?}");
    assert!(d.calibration.contains("leader"), "{}", d.calibration);
    let d = verify_decision(&mut c, verify_req("PENSION-101", finger(105, 2, 2))).await;
    assert!(!d.r#match, "{d:?}");
    // Fused decisions use the LEADER fusion model (learned on LEADER finger scores), not the classical
    // one: the genuine face + finger is accepted, an impostor face + finger is not.
    let fused = |face: &str, finger_id: u32| proto::VerifyRequest {
        additional_probes: vec![image(&lfw(face, 3))],
        ..verify_req("PENSION-101", finger(finger_id, 2, 2))
    };
    let d = verify_decision(&mut c, fused("Aaron_Peirsol", 101)).await;
    assert!(
        d.r#match && d.model_id == "fusion-mobilefacenet-128-leader",
        "{d:?}"
    );
    let d = verify_decision(&mut c, fused("Adam_Sandler", 105)).await;
    assert!(!d.r#match, "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fused_identification_decides_every_shortlisted_subject_on_face_and_finger() {
    let dir = temp_dir("fused-identify");
    let server = Server::start(&dir, &[]);
    let mut c = server.client(BANK).await;
    const RIGHT_INDEX: u32 = 2;
    const LEFT_INDEX: u32 = 7;
    // Claimants with a face and a finger, one with a face only, one with a finger only.
    let gallery = [
        ("CLAIM-1", Some(("Colin_Powell", 40)), Some(101)),
        ("CLAIM-2", Some(("Tony_Blair", 18)), Some(102)),
        ("CLAIM-3", Some(("Hugo_Chavez", 2)), Some(103)),
        ("CLAIM-4", Some(("Jean_Chretien", 2)), None),
        ("CLAIM-5", None, Some(105)),
    ];
    for (id, face, finger_id) in gallery {
        let bios = face
            .map(|(n, i)| image(&lfw(n, i)))
            .into_iter()
            .chain(finger_id.map(|f| finger(f, 1, RIGHT_INDEX)))
            .collect();
        c.inner.enroll(c.req(enroll_req(id, bios))).await.unwrap();
    }
    let identify = |probe, additional: Vec<proto::Biometric>| proto::IdentifyRequest {
        probe: Some(probe),
        additional_probes: additional,
        top_k: 3,
        ..Default::default()
    };
    let fused_id = "fusion-mobilefacenet-128-classical";

    // A fresh face and a fresh impression of the same claimant: found first, with both scores, and
    // the fused score is exactly the fused Verify of that subject with the same probes.
    let probes = || (image(&lfw("Colin_Powell", 49)), finger(101, 3, RIGHT_INDEX));
    let (face, print) = probes();
    let found = identified(&mut c, identify(face, vec![print])).await;
    assert_eq!(found.model_id, fused_id);
    assert_eq!(found.target_fmr, 1e-4);
    assert_eq!(found.gallery_size, 4 + 4, "face + finger templates");
    let top = &found.candidates[0];
    assert_eq!(
        (top.subject_id.as_str(), top.rank, top.modality),
        ("CLAIM-1", 1, proto::Modality::Fused as i32),
        "{found:?}"
    );
    assert_eq!(top.threshold, found.threshold);
    assert!(top.score >= top.threshold);
    let shown: Vec<(u32, i32)> = top
        .probe_scores
        .iter()
        .map(|p| (p.probe_index, p.modality))
        .collect();
    assert_eq!(
        shown,
        [
            (0, proto::Modality::Face as i32),
            (1, proto::Modality::Finger as i32)
        ]
    );
    let (face, print) = probes();
    let verified = verify_decision(
        &mut c,
        proto::VerifyRequest {
            additional_probes: vec![print],
            ..verify_req("CLAIM-1", face)
        },
    )
    .await;
    assert_eq!(verified.score, top.score);
    assert_eq!(verified.threshold, top.threshold);
    // The gallery side of the finger score comes from the finger index's prepared cylinders: the score
    // of extracting and comparing both images afresh (to the stored template's coordinate rounding).
    let fresh = c
        .inner
        .compare(c.req(proto::CompareRequest {
            a: Some(finger(101, 3, RIGHT_INDEX)),
            b: Some(finger(101, 1, RIGHT_INDEX)),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let fresh = fresh.decision.unwrap().score;
    assert!(
        (fresh - top.probe_scores[1].score).abs() < 1e-4,
        "{fresh} vs {top:?}"
    );
    assert!(found.candidates[1..]
        .iter()
        .all(|c| c.subject_id != "CLAIM-1"));
    let audit = server.audit_lines();
    let audited = audit
        .iter()
        .rfind(|l| l["operation"] == "Identify")
        .unwrap();
    assert_eq!(
        audited["model_ids"],
        serde_json::json!([fused_id, "mobilefacenet-128", "finger-classical"])
    );
    assert_eq!(audited["candidates"][0][0], "CLAIM-1", "{audited}");
    assert_eq!(
        audited["candidate_thresholds"][0]
            .as_f64()
            .map(|t| t as f32),
        Some(found.candidates[0].threshold),
        "{audited}"
    );

    // A subject enrolled without a finger is decided on the face alone (the face-only threshold).
    let found = identified(
        &mut c,
        identify(
            image(&lfw("Jean_Chretien", 6)),
            vec![finger(106, 3, RIGHT_INDEX)],
        ),
    )
    .await;
    let top = &found.candidates[0];
    assert_eq!(top.subject_id, "CLAIM-4", "{found:?}");
    assert_eq!(top.probe_scores.len(), 1);
    assert_eq!(top.probe_scores[0].probe_index, 0);
    assert_ne!(top.threshold, found.threshold);

    // Strangers (an unenrolled face and finger): no one.
    let found = identified(
        &mut c,
        identify(
            image(&lfw("George_W_Bush", 7)),
            vec![finger(107, 2, RIGHT_INDEX)],
        ),
    )
    .await;
    assert!(found.candidates.is_empty(), "{found:?}");

    // A face too poor to identify on its own is carried by the finger.
    let poor_face = {
        let sharp = rgb(&lfw("Colin_Powell", 49));
        let small = image::imageops::resize(&sharp, 40, 40, image::imageops::FilterType::Triangle);
        let back = image::imageops::resize(&small, 250, 250, image::imageops::FilterType::Triangle);
        bytes(encode(&DynamicImage::ImageRgb8(back), ImageFormat::Jpeg))
    };
    let face_only = identified(
        &mut c,
        proto::IdentifyRequest {
            probe: Some(poor_face.clone()),
            top_k: 3,
            target_fmr: 1e-4,
            ..Default::default()
        },
    )
    .await;
    let fused = identified(
        &mut c,
        identify(poor_face, vec![finger(101, 3, RIGHT_INDEX)]),
    )
    .await;
    assert!(face_only.candidates.is_empty(), "{face_only:?}");
    let top = &fused.candidates[0];
    assert_eq!(top.subject_id, "CLAIM-1", "{fused:?}");
    assert!(
        top.probe_scores[0].score < face_only.threshold,
        "the face alone is below its own threshold: {fused:?}"
    );

    // Two fingers (as a chip ID card holds): a subject enrolled with both is decided on the
    // two-finger calibration, in 1:N and in 1:1.
    let both = vec![finger(108, 1, RIGHT_INDEX), finger(109, 1, LEFT_INDEX)];
    c.inner
        .enroll(c.req(enroll_req("CLAIM-6", both)))
        .await
        .unwrap();
    let two = identified(
        &mut c,
        identify(
            finger(108, 3, RIGHT_INDEX),
            vec![finger(109, 3, LEFT_INDEX)],
        ),
    )
    .await;
    let top = &two.candidates[0];
    assert_eq!(top.subject_id, "CLAIM-6", "{two:?}");
    assert_eq!(top.probe_scores.len(), 2, "{two:?}");
    assert!(top.score >= top.threshold, "{two:?}");
    let model = FusionModel::load(&FusionModel::default_path()).unwrap();
    let two_fingers = model
        .threshold_for_fmr(
            Inputs {
                face: false,
                fingers: 2,
            },
            1e-4,
        )
        .unwrap();
    assert!(
        (f64::from(top.threshold) - two_fingers).abs() < 1e-4,
        "{} vs {two_fingers}",
        top.threshold
    );
    let both = |second: u32| proto::VerifyRequest {
        additional_probes: vec![finger(second, 3, LEFT_INDEX)],
        target_fmr: 1e-4,
        ..verify_req("CLAIM-6", finger(108, 3, RIGHT_INDEX))
    };
    let genuine = c.inner.verify(c.req(both(109))).await.unwrap().into_inner();
    let d = genuine.decision.unwrap();
    assert!(d.r#match, "{d:?}");
    assert_eq!(genuine.probe_scores.len(), 2);
    assert!((f64::from(d.threshold) - two_fingers).abs() < 1e-4, "{d:?}");
    // The wrong second finger (another person's) lowers the fused score.
    let mixed = c.inner.verify(c.req(both(110))).await.unwrap().into_inner();
    assert!(mixed.decision.unwrap().score < d.score);

    // Refusals: two faces, a finger without its position, three fingers (not calibrated), too many.
    let r = c.req(identify(
        image(&lfw("Colin_Powell", 49)),
        vec![image(&lfw("Colin_Powell", 71))],
    ));
    assert_status(
        c.inner.identify(r).await,
        Code::InvalidArgument,
        "INVALID_REQUEST",
    );
    let r = c.req(identify(
        image(&lfw("Colin_Powell", 49)),
        vec![finger(101, 3, 0)],
    ));
    assert_status(
        c.inner.identify(r).await,
        Code::InvalidArgument,
        "INVALID_REQUEST",
    );
    let r = c.req(identify(
        image(&lfw("Colin_Powell", 49)),
        vec![
            finger(101, 3, RIGHT_INDEX),
            finger(102, 3, LEFT_INDEX),
            finger(103, 3, 3),
        ],
    ));
    assert_status(
        c.inner.identify(r).await,
        Code::FailedPrecondition,
        "MODEL_UNCALIBRATED",
    );
    let r = c.req(identify(
        image(&lfw("Colin_Powell", 49)),
        vec![finger(101, 3, RIGHT_INDEX), finger(101, 4, RIGHT_INDEX)],
    ));
    assert_status(
        c.inner.identify(r).await,
        Code::InvalidArgument,
        "INVALID_REQUEST",
    );
    let r = c.req(identify(
        image(&lfw("Colin_Powell", 49)),
        (0..8)
            .map(|i| finger(101, 1 + i % 8, RIGHT_INDEX))
            .collect(),
    ));
    assert_status(
        c.inner.identify(r).await,
        Code::InvalidArgument,
        "INVALID_REQUEST",
    );
}
