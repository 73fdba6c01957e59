//! The document store on an S3-compatible object store: a real server speaking the S3 API
//! (`BANLI_TEST_S3_ENDPOINT`, or moto's server started here: `python3 -m moto.server`, which
//! `.ci/run` installs). Skipped with a notice when neither is there, unless
//! `BANLI_REQUIRE_SERVICES=1`.

use banli_documents::s3::S3;
use banli_documents::testing::S3Server;
use banli_documents::{BlobStore, MediaType, PutError};
use tokio::io::AsyncReadExt;

fn pdf(len: usize, seed: u8) -> Vec<u8> {
    let mut v = b"%PDF-1.7\n".to_vec();
    v.extend((0..len - 9).map(|i| (i as u8).wrapping_mul(7) ^ seed));
    v
}

#[tokio::test]
async fn documents_live_in_the_bucket_once_and_refusals_leave_nothing() {
    let Some(server) = S3Server::start() else {
        assert!(
            !banli_documents::testing::required(),
            "no S3-compatible server: set BANLI_TEST_S3_ENDPOINT or install moto (pip install 'moto[server]')"
        );
        eprintln!(
            "notice: skipped, no S3-compatible server (BANLI_TEST_S3_ENDPOINT or python3 -m moto.server)"
        );
        return;
    };
    let client = S3::new(server.config("deployment-1/")).expect("a client");
    // A bucket that does not exist is named at start, not at the first upload.
    let staging0 = std::env::temp_dir().join(format!("banli-s3-{}", uuid::Uuid::now_v7().simple()));
    let err = BlobStore::s3(&staging0, client.clone())
        .await
        .expect_err("no bucket yet");
    assert!(err.to_string().contains("does not exist"), "{err}");
    client.create_bucket().await.expect("the bucket");
    let staging = std::env::temp_dir().join(format!("banli-s3-{}", uuid::Uuid::now_v7().simple()));
    let store = BlobStore::s3(&staging, client.clone())
        .await
        .expect("the store");

    let body = pdf(3 * 1024 * 1024 + 17, 1);
    let a = store.put(&body[..], 8 << 20).await.expect("stored");
    assert!(a.new);
    assert_eq!((a.size, a.media_type), (body.len() as u64, MediaType::Pdf));
    assert!(store.contains(&a.sha256).await.expect("asked"));
    let again = store.put(&body[..], 8 << 20).await.expect("stored");
    assert!(!again.new, "the same content is kept once");
    let mut back = Vec::new();
    store
        .open_blob(&a.sha256)
        .await
        .expect("read")
        .expect("there")
        .read_to_end(&mut back)
        .await
        .expect("bytes");
    assert_eq!(back, body);

    // Who uploaded it, beside it in the bucket.
    store
        .claim(&a, "agency-1", "答复函.pdf")
        .await
        .expect("claimed");
    let c = store
        .claimed(&a.sha256, "agency-1")
        .await
        .expect("read")
        .expect("claimed");
    assert_eq!((c.name.as_str(), c.size), ("答复函.pdf", body.len() as u64));
    assert_eq!(
        store.claimed(&a.sha256, "agency-2").await.expect("read"),
        None
    );

    // Refused uploads reach neither the bucket nor the staging directory.
    let big = pdf(2 * 1024 * 1024, 2);
    assert!(matches!(
        store.put(&big[..], 1 << 20).await,
        Err(PutError::TooLarge { .. })
    ));
    let mut exe = b"MZ".to_vec();
    exe.resize(100_000, 1);
    assert!(matches!(
        store.put(&exe[..], 1 << 20).await,
        Err(PutError::NotAllowed(_))
    ));
    for refused in [&big, &exe] {
        let sha: String = sha2_hex(refused);
        assert!(!store.contains(&sha).await.expect("asked"));
    }
    assert!(
        store
            .open_blob(&"0".repeat(64))
            .await
            .expect("asked")
            .is_none()
    );
    let left = std::fs::read_dir(staging.join("tmp"))
        .expect("staging")
        .count();
    assert_eq!(left, 0, "no upload left in staging");
}

fn sha2_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}
