//! One certificate from the CA (RFC 8555): the account (made once, then
//! reused), an order for the names, an HTTP-01 answer per name published
//! through [`Challenges`] while the CA checks it, a new key and CSR, and
//! the chain the CA issues.

use std::time::Duration;

use instant_acme::{
    Account, AccountBuilder, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder,
    OrderStatus, RetryPolicy,
};

use super::http_client::AcmeHttp;
use super::stored::{self, StoredCertificate};
use super::{AcmeConfig, Challenges};
use crate::error::{Error, Result};

/// How long the CA gets to check the answers, and to issue.
const POLLING: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(500))
    .backoff(1.5)
    .timeout(Duration::from_secs(120));

/// Obtains a certificate for `domains` and keeps it.
pub async fn obtain(
    settings: &AcmeConfig,
    data_dir: &std::path::Path,
    domains: &[String],
    challenges: &Challenges,
) -> Result<StoredCertificate> {
    let account = account(settings, data_dir).await?;
    let identifiers: Vec<Identifier> = domains.iter().cloned().map(Identifier::Dns).collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(failed("ordering a certificate"))?;
    let mut tokens = Vec::new();
    let answered = answer_challenges(&mut order, challenges, &mut tokens).await;
    let ready = match answered {
        Ok(()) => order
            .poll_ready(&POLLING)
            .await
            .map_err(failed("waiting for the CA")),
        Err(e) => Err(e),
    };
    for token in &tokens {
        challenges.remove(token);
    }
    let status = ready?;
    if status != OrderStatus::Ready {
        let reason = order
            .state()
            .error
            .as_ref()
            .map_or_else(|| format!("{status:?}"), |problem| problem.to_string());
        return Err(Error::internal(format!(
            "the CA refused the order for {}: {reason}",
            domains.join(", ")
        )));
    }
    let key_pem = order
        .finalize()
        .await
        .map_err(failed("finalizing the order"))?;
    let chain_pem = order
        .poll_certificate(&POLLING)
        .await
        .map_err(failed("downloading the certificate"))?;
    let certificate = StoredCertificate::parse(chain_pem, key_pem)?;
    stored::save_certificate(data_dir, &certificate)?;
    Ok(certificate)
}

/// Publishes the HTTP-01 answer of every pending authorization and tells
/// the CA to check it; the tokens published are pushed to `tokens`.
async fn answer_challenges(
    order: &mut instant_acme::Order,
    challenges: &Challenges,
    tokens: &mut Vec<String>,
) -> Result<()> {
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization.map_err(failed("reading an authorization"))?;
        match authorization.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => {
                return Err(Error::internal(format!(
                    "an authorization is {other:?}, not pending"
                )))
            }
        }
        let mut challenge = authorization
            .challenge(ChallengeType::Http01)
            .ok_or_else(|| Error::internal("the CA offers no HTTP-01 challenge"))?;
        let token = challenge.token.clone();
        challenges.insert(
            token.clone(),
            challenge.key_authorization().as_str().to_owned(),
        );
        tokens.push(token);
        challenge
            .set_ready()
            .await
            .map_err(failed("answering a challenge"))?;
    }
    Ok(())
}

/// The account kept for this directory, or a new one (then kept).
async fn account(settings: &AcmeConfig, data_dir: &std::path::Path) -> Result<Account> {
    let builder = || -> Result<AccountBuilder> {
        let http = AcmeHttp::new(settings.ca_file.as_deref())?;
        Ok(Account::builder_with_http(Box::new(http)))
    };
    if let Some(credentials) = stored::account(data_dir, &settings.directory_url) {
        return builder()?
            .from_credentials(credentials)
            .await
            .map_err(failed("restoring the ACME account"));
    }
    let contact: Vec<&str> = settings.contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder()?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            settings.directory_url.clone(),
            None,
        )
        .await
        .map_err(failed("creating an ACME account"))?;
    stored::save_account(data_dir, &settings.directory_url, credentials)?;
    tracing::info!(directory = %settings.directory_url, "created an ACME account");
    Ok(account)
}

fn failed(doing: &'static str) -> impl Fn(instant_acme::Error) -> Error {
    move |e| Error::internal(format!("ACME, {doing}: {e}"))
}
