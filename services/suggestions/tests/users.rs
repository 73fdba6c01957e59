//! Accounts for people: created without a password and with a one-time set-password token,
//! the password kept as an argon2id hash, logins refused alike for an unknown name and a wrong
//! password, the account locked after repeated failures and unlocked by a reset.

use banli_calendar::Calendar;
use banli_db::testing::TestDb;
use banli_domain::{Role, RuleProfile};
use banli_suggestions::app::{App, Clock};
use banli_suggestions::store::Store;
use time::macros::date;

async fn app() -> (TestDb, App) {
    on(TestDb::sqlite().await).await
}

async fn on(db: TestDb) -> (TestDb, App) {
    let store = Store::new(db.pool.clone());
    store.migrate().await.expect("migrations");
    let office = banli_domain::directory::Agency {
        id: banli_domain::ids::AgencyId::new(),
        name: "Assigning office".into(),
        assigning_office: true,
    };
    store.create_agency(&office).await.expect("office");
    let app = App::new(
        store,
        RuleProfile::hunan(),
        Calendar::embedded().clone(),
        Clock::Fixed(date!(2020 - 03 - 02)),
    );
    (db, app)
}

#[tokio::test]
async fn a_person_sets_a_password_once_and_logs_in_with_it() {
    sets_a_password_once(app().await).await;
}

#[tokio::test]
async fn accounts_work_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    sets_a_password_once(on(db).await).await;
}

async fn sets_a_password_once((db, app): (TestDb, App)) {
    let (user, token) = app
        .create_user("office.li", Role::AssigningOffice, None, None, None)
        .await
        .expect("created");
    assert!(
        user.password_hash.is_none(),
        "no password until the person sets one"
    );
    assert_ne!(
        user.setup_hash.as_deref(),
        Some(token.as_str()),
        "the token is stored hashed"
    );
    let e = app
        .check_login("office.li", "anything at all")
        .await
        .expect_err("no password yet");
    assert_eq!(e.code.http_status(), 401);
    let e = app
        .set_password(&token, "short")
        .await
        .expect_err("too short");
    assert_eq!(e.code.http_status(), 422, "{}", e.detail);
    let e = app
        .set_password(&token, "OFFICE.LI")
        .await
        .expect_err("the username");
    assert_eq!(e.code.http_status(), 422, "{}", e.detail);
    let user = app
        .set_password(&token, "correct horse battery")
        .await
        .expect("set");
    let phc = user.password_hash.clone().expect("hashed");
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    assert!(!phc.contains("correct horse"), "{phc}");
    let e = app
        .set_password(&token, "another good password")
        .await
        .expect_err("the token is spent");
    assert_eq!(e.code.http_status(), 422, "{}", e.detail);
    let who = app
        .check_login("office.li", "correct horse battery")
        .await
        .expect("logged in");
    assert_eq!(who.role, Role::AssigningOffice);
    assert!(
        who.agency_id.is_some(),
        "bound to the office's agency like its keys"
    );
    // A session: its secret finds the person, as the principal of their role; the store
    // holds only its hash; signing out ends it; a new password ends every session.
    let secret = app.start_session(&who).await.expect("session");
    let signed = app.session(&secret).await.expect("read").expect("live");
    assert_eq!(signed.user.id, who.id);
    assert_eq!(signed.principal.key_id, who.id);
    assert_eq!(signed.principal.role, Role::AssigningOffice);
    assert_eq!(signed.principal.agency, who.agency_id);
    assert!(app.session("not-a-secret").await.expect("read").is_none());
    assert!(
        app.session(&"0".repeat(64)).await.expect("read").is_none(),
        "an unknown secret"
    );
    // Unused for longer than the idle limit: ended (and forgotten).
    let idle = app.start_session(&who).await.expect("session");
    let store = Store::new(db.pool.clone());
    let hash = banli_api::token::secret_hash(&idle);
    let long_ago = time::OffsetDateTime::now_utc()
        - banli_suggestions::app::SESSION_IDLE
        - time::Duration::seconds(1);
    store
        .touch_user_session(&hash, long_ago)
        .await
        .expect("aged");
    assert!(
        app.session(&idle).await.expect("read").is_none(),
        "idle too long"
    );
    assert!(
        store.user_session(&hash).await.expect("read").is_none(),
        "an expired session is deleted"
    );
    app.end_session(&secret).await.expect("signed out");
    assert!(app.session(&secret).await.expect("read").is_none(), "ended");
    let other = app.start_session(&who).await.expect("session");
    let reset = app.reset_password("office.li").await.expect("reset");
    assert!(
        app.session(&other).await.expect("read").is_none(),
        "a reset signs everyone out"
    );
    app.set_password(&reset, "a new good password")
        .await
        .expect("set again");
    // A name taken, a bad name, a deputy role without a deputy.
    let e = app
        .create_user("office.li", Role::AssigningOffice, None, None, None)
        .await
        .expect_err("taken");
    assert_eq!(e.code.http_status(), 409, "{}", e.detail);
    let e = app
        .create_user("a b", Role::AssigningOffice, None, None, None)
        .await
        .expect_err("bad name");
    assert_eq!(e.code.http_status(), 422, "{}", e.detail);
    assert!(
        app.create_user("deputy.x", Role::Deputy, None, None, None)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn failed_logins_lock_the_account_until_a_reset() {
    let (_db, app) = app().await;
    let (_, token) = app
        .create_user("office.wang", Role::AssigningOffice, None, None, None)
        .await
        .expect("created");
    app.set_password(&token, "a long enough secret")
        .await
        .expect("set");
    let e = app
        .check_login("nobody.here", "a long enough secret")
        .await
        .expect_err("unknown");
    let wrong = app
        .check_login("office.wang", "not the password")
        .await
        .expect_err("wrong");
    assert_eq!(
        (e.code.http_status(), e.detail.clone()),
        (wrong.code.http_status(), wrong.detail.clone()),
        "refused alike"
    );
    for _ in 1..banli_suggestions::app::MAX_FAILED_LOGINS {
        assert_eq!(
            app.check_login("office.wang", "still not it")
                .await
                .expect_err("wrong")
                .code
                .http_status(),
            401
        );
    }
    let e = app
        .check_login("office.wang", "a long enough secret")
        .await
        .expect_err("locked, even with the right password");
    assert_eq!(e.code.http_status(), 429, "{}", e.detail);
    assert!(e.detail.contains("locked until"), "{}", e.detail);
    let token = app.reset_password("office.wang").await.expect("reset");
    assert!(
        app.check_login("office.wang", "a long enough secret")
            .await
            .is_err(),
        "the old password is gone"
    );
    app.set_password(&token, "a brand new secret")
        .await
        .expect("set again");
    app.check_login("office.wang", "a brand new secret")
        .await
        .expect("unlocked");
    assert_eq!(
        app.reset_password("nobody.here")
            .await
            .expect_err("unknown")
            .code
            .http_status(),
        404
    );
}
