//! Rate providers: fetching and parsing the European Central Bank's daily XML and Open Exchange
//! Rates' JSON into exact base rates. Any odd response is an error, never a partial rate set.

use std::collections::BTreeMap;
use std::time::Duration;

use quick_xml::events::{BytesStart, Event};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::config::Settings;
use crate::domain::money::{decimal_from_json, parse_decimal};

pub const DEFAULT_ECB_URL: &str = "https://www.ecb.europa.eu/stats/eurofxref";
pub const DEFAULT_OXR_URL: &str = "https://openexchangerates.org/api";

/// Largest provider response read (the real ones are a few kilobytes).
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// How long one provider request may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A provider's rates: how many units of each currency one unit of `base` buys. The base itself
/// is included at exactly 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRates {
    pub base: String,
    pub rates: BTreeMap<String, Decimal>,
}

/// Why a provider's answer was not used. Messages never contain the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("rate provider unreachable: {0}")]
    Unreachable(String),
    #[error("rate provider answered HTTP {status}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Status { status: u16, detail: Option<String> },
    #[error("rate provider response is malformed: {0}")]
    Malformed(String),
    #[error("rate provider response contains no rates")]
    Empty,
}

/// Where rates come from: Open Exchange Rates when an API key is configured, else the ECB.
#[derive(Clone)]
pub enum Provider {
    Ecb { base_url: String },
    OpenExchangeRates { base_url: String, app_id: String },
}

impl std::fmt::Debug for Provider {
    // Hand-written so the API key never reaches a log line through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.describe())
    }
}

impl Provider {
    pub fn from_settings(settings: &Settings) -> Provider {
        let base = settings.rates_provider_url.clone();
        match &settings.open_exchange_rates_api_key {
            Some(key) => Provider::OpenExchangeRates {
                base_url: base.unwrap_or_else(|| DEFAULT_OXR_URL.to_string()),
                app_id: key.clone(),
            },
            None => Provider::Ecb {
                base_url: base.unwrap_or_else(|| DEFAULT_ECB_URL.to_string()),
            },
        }
    }

    /// The name stored with the rates.
    pub fn name(&self) -> &'static str {
        match self {
            Provider::Ecb { .. } => ECB,
            Provider::OpenExchangeRates { .. } => OXR,
        }
    }

    /// The URL asked, with the API key replaced: safe to log.
    pub fn describe(&self) -> String {
        match self {
            Provider::Ecb { base_url } => format!("{base_url}/eurofxref-daily.xml"),
            Provider::OpenExchangeRates { base_url, .. } => format!("{base_url}/latest.json?app_id=***"),
        }
    }

    /// Replaces the API key wherever it appears in `text`.
    pub fn redact(&self, text: &str) -> String {
        match self {
            Provider::OpenExchangeRates { app_id, .. } if !app_id.is_empty() => text.replace(app_id.as_str(), "***"),
            _ => text.to_string(),
        }
    }

    /// Fetches and parses the latest rates.
    pub async fn fetch(&self, client: &reqwest::Client) -> Result<BaseRates, ProviderError> {
        let request = match self {
            Provider::Ecb { base_url } => client.get(format!("{base_url}/eurofxref-daily.xml")),
            Provider::OpenExchangeRates { base_url, app_id } => client
                .get(format!("{base_url}/latest.json"))
                .query(&[("app_id", app_id.as_str())]),
        };
        let mut response = request
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|err| ProviderError::Unreachable(self.redact(&describe_reqwest_error(err))))?;
        let status = response.status();
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(ProviderError::Malformed(format!(
                            "response larger than {MAX_RESPONSE_BYTES} bytes"
                        )));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(err) => {
                    return Err(ProviderError::Unreachable(self.redact(&describe_reqwest_error(err))));
                }
            }
        }
        if !status.is_success() {
            return Err(ProviderError::Status {
                status: status.as_u16(),
                detail: error_detail(&body).map(|d| self.redact(&d)),
            });
        }
        match self {
            Provider::Ecb { .. } => parse_ecb_xml(&body),
            Provider::OpenExchangeRates { .. } => parse_oxr_json(&body),
        }
        .map_err(|err| match err {
            ProviderError::Malformed(msg) => ProviderError::Malformed(self.redact(&msg)),
            other => other,
        })
    }
}

pub const ECB: &str = "ecb";
pub const OXR: &str = "openexchangerates";

/// A reqwest error with its causes but without its URL (which may carry the API key).
fn describe_reqwest_error(err: reqwest::Error) -> String {
    let timeout = err.is_timeout();
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if timeout && !text.contains("timed out") {
        text.push_str(" (timed out)");
    }
    text
}

/// The short reason a provider gave with an error status (OXR: `{"message":"invalid_app_id"}`).
fn error_detail(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let message = value.get("message")?.as_str()?;
    Some(message.chars().take(200).collect())
}

/// Whether `code` is a currency code as stored: three upper-case ASCII letters.
pub fn is_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// Collects `(currency, rate text)` pairs into base rates: every rate must be a positive
/// decimal, no currency twice; the base is added at 1 (or must be 1 when listed).
fn collect(base: &str, pairs: Vec<(String, String)>) -> Result<BaseRates, ProviderError> {
    let base = base.trim().to_ascii_uppercase();
    if !is_code(&base) {
        return Err(ProviderError::Malformed(format!(
            "base currency {base:?} is not a currency code"
        )));
    }
    let mut rates = BTreeMap::new();
    let mut skipped = 0usize;
    for (code, text) in pairs {
        let code = code.trim().to_ascii_uppercase();
        if !is_code(&code) {
            skipped += 1;
            continue;
        }
        let rate = parse_decimal(&text)
            .ok()
            .filter(|r| *r > Decimal::ZERO)
            .ok_or_else(|| ProviderError::Malformed(format!("rate of {code} is not a positive number")))?;
        if rates.insert(code.clone(), rate.normalize()).is_some() {
            return Err(ProviderError::Malformed(format!("{code} is listed twice")));
        }
    }
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "rate provider listed entries that are not currency codes; ignored"
        );
    }
    if rates.keys().all(|code| *code == base) {
        return Err(ProviderError::Empty);
    }
    match rates.get(&base) {
        Some(rate) if *rate != Decimal::ONE => {
            return Err(ProviderError::Malformed(format!("base {base} is not quoted at 1")));
        }
        Some(_) => {}
        None => {
            rates.insert(base.clone(), Decimal::ONE);
        }
    }
    Ok(BaseRates { base, rates })
}

/// Parses the ECB's `eurofxref-daily.xml`: `<Cube currency='USD' rate='1.08'/>` elements,
/// EUR-based. A document that is not well-formed XML, or ends early, is malformed.
pub fn parse_ecb_xml(bytes: &[u8]) -> Result<BaseRates, ProviderError> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    reader.config_mut().trim_text(true);
    let mut depth = 0usize;
    let mut seen_element = false;
    let mut pairs = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|err| ProviderError::Malformed(format!("invalid XML: {err}")))?;
        match event {
            Event::Start(element) => {
                depth += 1;
                seen_element = true;
                read_cube(&element, &mut pairs)?;
            }
            Event::Empty(element) => {
                seen_element = true;
                read_cube(&element, &mut pairs)?;
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_element {
        return Err(ProviderError::Malformed("not an XML document".into()));
    }
    if depth != 0 {
        return Err(ProviderError::Malformed("XML document ends early".into()));
    }
    if pairs.is_empty() {
        return Err(ProviderError::Empty);
    }
    collect("EUR", pairs)
}

/// Reads the `currency` and `rate` attributes of a `Cube` element, if it is one that has them.
fn read_cube(element: &BytesStart<'_>, pairs: &mut Vec<(String, String)>) -> Result<(), ProviderError> {
    if element.local_name().as_ref() != b"Cube" {
        return Ok(());
    }
    let (mut currency, mut rate) = (None, None);
    for attribute in element.attributes() {
        let attribute = attribute.map_err(|err| ProviderError::Malformed(format!("invalid XML attribute: {err}")))?;
        let value = || {
            attribute
                .unescape_value()
                .map(|v| v.into_owned())
                .map_err(|err| ProviderError::Malformed(format!("invalid XML attribute: {err}")))
        };
        match attribute.key.local_name().as_ref() {
            b"currency" => currency = Some(value()?),
            b"rate" => rate = Some(value()?),
            _ => {}
        }
    }
    match (currency, rate) {
        (Some(currency), Some(rate)) => {
            pairs.push((currency, rate));
            Ok(())
        }
        (None, None) => Ok(()),
        _ => Err(ProviderError::Malformed("a Cube has a currency or a rate alone".into())),
    }
}

#[derive(Deserialize)]
struct OxrLatest {
    base: String,
    rates: BTreeMap<String, serde_json::Value>,
}

/// Parses Open Exchange Rates' `latest.json`: `{"base":"USD","timestamp":…,"rates":{…}}`.
/// Numbers are read from their JSON text (never through binary floating point).
pub fn parse_oxr_json(bytes: &[u8]) -> Result<BaseRates, ProviderError> {
    let latest: OxrLatest =
        serde_json::from_slice(bytes).map_err(|err| ProviderError::Malformed(format!("invalid JSON: {err}")))?;
    let mut pairs = Vec::with_capacity(latest.rates.len());
    for (code, value) in latest.rates {
        let text = match &value {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) if decimal_from_json(&value).is_ok() => s.clone(),
            _ => {
                return Err(ProviderError::Malformed(format!("rate of {code} is not a number")));
            }
        };
        pairs.push((code, text));
    }
    if pairs.is_empty() {
        return Err(ProviderError::Empty);
    }
    collect(&latest.base, pairs)
}

/// Reads a rates file in either provider's format (for `cashcraft admin import-rates`): XML is
/// read as the ECB's, JSON as Open Exchange Rates'. Answers the provider name and the rates.
pub fn parse_file(bytes: &[u8]) -> Result<(&'static str, BaseRates), ProviderError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(bytes);
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'<') => parse_ecb_xml(bytes).map(|r| (ECB, r)),
        Some(b'{') => parse_oxr_json(bytes).map(|r| (OXR, r)),
        _ => Err(ProviderError::Malformed(
            "neither ECB XML nor Open Exchange Rates JSON".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    const ECB_SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
	<gesmes:subject>Reference rates</gesmes:subject>
	<gesmes:Sender>
		<gesmes:name>European Central Bank</gesmes:name>
	</gesmes:Sender>
	<Cube>
		<Cube time='2025-06-02'>
			<Cube currency='USD' rate='1.1389'/>
			<Cube currency='JPY' rate='163.22'/>
			<Cube currency="GBP" rate="0.84293"/>
		</Cube>
	</Cube>
</gesmes:Envelope>"#;

    #[test]
    fn parses_ecb_with_either_quotes() {
        let rates = parse_ecb_xml(ECB_SAMPLE.as_bytes()).unwrap();
        assert_eq!(rates.base, "EUR");
        assert_eq!(rates.rates.len(), 4);
        assert_eq!(rates.rates["EUR"], Decimal::ONE);
        assert_eq!(rates.rates["USD"], d("1.1389"));
        assert_eq!(rates.rates["JPY"], d("163.22"));
        assert_eq!(rates.rates["GBP"], d("0.84293"));
    }

    #[test]
    fn rejects_broken_ecb_documents() {
        let truncated = &ECB_SAMPLE[..ECB_SAMPLE.find("<Cube currency=\"GBP\"").unwrap()];
        assert!(matches!(
            parse_ecb_xml(truncated.as_bytes()),
            Err(ProviderError::Malformed(_))
        ));
        let cut_in_tag = &ECB_SAMPLE[..ECB_SAMPLE.find("rate='163").unwrap()];
        assert!(parse_ecb_xml(cut_in_tag.as_bytes()).is_err());
        let no_rates = "<gesmes:Envelope><Cube><Cube time='2025-06-02'></Cube></Cube></gesmes:Envelope>";
        assert_eq!(parse_ecb_xml(no_rates.as_bytes()), Err(ProviderError::Empty));
        assert!(parse_ecb_xml(b"").is_err());
        assert!(parse_ecb_xml(b"Service Unavailable").is_err());
        assert!(parse_ecb_xml(b"<html><body>Maintenance</body></html>").is_err());
        let bad_rate = ECB_SAMPLE.replace("1.1389", "abc");
        assert!(matches!(
            parse_ecb_xml(bad_rate.as_bytes()),
            Err(ProviderError::Malformed(_))
        ));
        let zero = ECB_SAMPLE.replace("1.1389", "0");
        assert!(matches!(
            parse_ecb_xml(zero.as_bytes()),
            Err(ProviderError::Malformed(_))
        ));
        let mismatched = ECB_SAMPLE.replace("</gesmes:Envelope>", "</Envelope>");
        assert!(parse_ecb_xml(mismatched.as_bytes()).is_err());
        let twice = ECB_SAMPLE.replace("JPY", "USD");
        assert!(matches!(
            parse_ecb_xml(twice.as_bytes()),
            Err(ProviderError::Malformed(_))
        ));
    }

    #[test]
    fn parses_oxr_exactly() {
        let json = r#"{"disclaimer":"x","license":"y","timestamp":1748858400,"base":"USD",
            "rates":{"EUR":0.878049,"USD":1,"VND":26385.5,"BTC":0.000009523809523809524,"JPY":143.3355}}"#;
        let rates = parse_oxr_json(json.as_bytes()).unwrap();
        assert_eq!(rates.base, "USD");
        assert_eq!(rates.rates["USD"], Decimal::ONE);
        assert_eq!(rates.rates["EUR"], d("0.878049"));
        assert_eq!(rates.rates["BTC"], d("0.000009523809523809524"));
        assert_eq!(rates.rates["VND"], d("26385.5"));
        assert_eq!(rates.rates.len(), 5);
    }

    #[test]
    fn adds_the_base_when_missing_and_checks_it_when_listed() {
        let rates = parse_oxr_json(br#"{"base":"USD","rates":{"EUR":0.9}}"#).unwrap();
        assert_eq!(rates.rates["USD"], Decimal::ONE);
        assert!(parse_oxr_json(br#"{"base":"USD","rates":{"EUR":0.9,"USD":2}}"#).is_err());
    }

    #[test]
    fn rejects_broken_oxr_documents() {
        for bad in [
            &br#"{"base":"USD","rates":{"EUR":0.9"#[..],
            br#"{"rates":{"EUR":0.9}}"#,
            br#"{"base":"USD"}"#,
            br#"{"base":"USD","rates":{"EUR":"abc"}}"#,
            br#"{"base":"USD","rates":{"EUR":-1}}"#,
            br#"{"base":"USD","rates":{"EUR":null}}"#,
            br#"not json"#,
            br#"[]"#,
        ] {
            assert!(parse_oxr_json(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            parse_oxr_json(br#"{"base":"USD","rates":{}}"#),
            Err(ProviderError::Empty)
        );
        assert_eq!(
            parse_oxr_json(br#"{"base":"USD","rates":{"USD":1}}"#),
            Err(ProviderError::Empty)
        );
    }

    #[test]
    fn files_of_either_format() {
        assert_eq!(parse_file(ECB_SAMPLE.as_bytes()).unwrap().0, ECB);
        assert_eq!(
            parse_file(b"\n {\"base\":\"USD\",\"rates\":{\"EUR\":0.9}}").unwrap().0,
            OXR
        );
        assert!(parse_file(b"USD,1.08").is_err());
    }

    #[test]
    fn never_shows_the_key() {
        let provider = Provider::OpenExchangeRates {
            base_url: "http://127.0.0.1:9".into(),
            app_id: "sekret-key".into(),
        };
        assert_eq!(provider.describe(), "http://127.0.0.1:9/latest.json?app_id=***");
        assert_eq!(
            format!("{provider:?}"),
            "openexchangerates (http://127.0.0.1:9/latest.json?app_id=***)"
        );
        assert_eq!(
            provider.redact("url ?app_id=sekret-key failed"),
            "url ?app_id=*** failed"
        );
    }

    #[tokio::test]
    async fn unreachable_provider_error_has_no_key() {
        let provider = Provider::OpenExchangeRates {
            // Port 9 (discard) is closed on test machines: the connection is refused at once.
            base_url: "http://127.0.0.1:9".into(),
            app_id: "sekret-key".into(),
        };
        let client = reqwest::Client::new();
        let err = provider.fetch(&client).await.unwrap_err();
        assert!(matches!(err, ProviderError::Unreachable(_)), "{err}");
        assert!(!err.to_string().contains("sekret-key"), "{err}");
    }
}
