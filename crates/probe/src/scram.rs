//! The client side of SASL SCRAM-SHA-512 (RFC 5802 with SHA-512, as Kafka speaks it): the
//! password never crosses the wire, only a proof over the server's salt and both nonces; the
//! server's signature is checked too, so a server that does not know the credential is refused.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha512};

/// Kafka's mechanism name.
pub const MECHANISM: &str = "SCRAM-SHA-512";
/// Kafka refuses fewer than 4096 iterations; more than this from a server is not ours to spend.
const MAX_ITERATIONS: u32 = 100_000;

/// One login in progress: after [`Scram::client_first`], [`Scram::client_final`] answers the
/// server's first message and [`Scram::verify_server`] checks its last.
pub struct Scram {
    password: String,
    nonce: String,
    first_bare: String,
    server_signature: Option<Vec<u8>>,
}

impl Scram {
    /// A login as `user` with a fresh random nonce.
    pub fn new(user: &str, password: &str) -> Self {
        let nonce: [u8; 18] = rand::random();
        Self::with_nonce(user, password, &B64.encode(nonce))
    }

    fn with_nonce(user: &str, password: &str, nonce: &str) -> Self {
        let name = user.replace('=', "=3D").replace(',', "=2C");
        Scram { password: password.to_string(), nonce: nonce.to_string(), first_bare: format!("n={name},r={nonce}"), server_signature: None }
    }

    /// The client's first message (no channel binding, no authorization id).
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.first_bare)
    }

    /// The client's final message, with its proof, for the server's first message.
    pub fn client_final(&mut self, server_first: &str) -> Result<String, String> {
        let field = |k: &str| server_first.split(',').find_map(|f| f.strip_prefix(k)).ok_or_else(|| format!("the server's SCRAM challenge has no {k}"));
        let nonce = field("r=")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the server's SCRAM nonce does not extend ours".into());
        }
        let salt = B64.decode(field("s=")?).map_err(|_| "the server's SCRAM salt is not base64".to_string())?;
        let iterations: u32 = field("i=")?.parse().map_err(|_| "the server's SCRAM iteration count is not a number".to_string())?;
        if !(1..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!("the server asks for {iterations} SCRAM iterations (at most {MAX_ITERATIONS})"));
        }
        let salted = hi(self.password.as_bytes(), &salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha512::digest(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        self.server_signature = Some(hmac(&hmac(&salted, b"Server Key"), auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Checks the server's final message: its signature proves it holds the credential.
    pub fn verify_server(&self, server_final: &str) -> Result<(), String> {
        if let Some(e) = server_final.strip_prefix("e=") {
            return Err(format!("the server refused the login: {e}"));
        }
        let expected = self.server_signature.as_ref().ok_or("no SCRAM exchange to verify")?;
        let got = server_final.strip_prefix("v=").and_then(|v| B64.decode(v).ok()).ok_or("the server's SCRAM answer has no signature")?;
        if &got != expected {
            return Err("the server's SCRAM signature is wrong: it does not hold this user's credential".into());
        }
        Ok(())
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes a key of any length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// `Hi()` of RFC 5802: PBKDF2 with HMAC-SHA-512 and one block.
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut u = hmac(password, &[salt, &1u32.to_be_bytes()].concat());
    let mut out = u.clone();
    for _ in 1..iterations {
        u = hmac(password, &u);
        out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server's side of the exchange, as Kafka's ScramSaslServer computes it.
    fn server(password: &str, salt: &[u8], iterations: u32, first_bare: &str, server_first: &str, client_final: &str) -> Result<String, String> {
        let (without_proof, proof) = client_final.rsplit_once(",p=").unwrap();
        let salted = hi(password.as_bytes(), salt, iterations);
        let stored_key = Sha512::digest(hmac(&salted, b"Client Key"));
        let auth = format!("{first_bare},{server_first},{without_proof}");
        let signature = hmac(&stored_key, auth.as_bytes());
        let client_key: Vec<u8> = B64.decode(proof).unwrap().iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        if Sha512::digest(&client_key).as_slice() != stored_key.as_slice() {
            return Err("e=invalid-proof".into());
        }
        Ok(format!("v={}", B64.encode(hmac(&hmac(&salted, b"Server Key"), auth.as_bytes()))))
    }

    #[test]
    fn a_login_with_the_right_password_is_proven_both_ways() {
        let mut c = Scram::with_nonce("ad,min=", "s3cret", "cnonce");
        assert_eq!(c.client_first(), "n,,n=ad=2Cmin=3D,r=cnonce");
        let server_first = format!("r=cnonceSERVER,s={},i=4096", B64.encode(b"salt"));
        let fin = c.client_final(&server_first).unwrap();
        assert!(fin.starts_with("c=biws,r=cnonceSERVER,p="), "{fin}");
        assert!(!fin.contains("s3cret"));
        let answer = server("s3cret", b"salt", 4096, "n=ad=2Cmin=3D,r=cnonce", &server_first, &fin).unwrap();
        c.verify_server(&answer).unwrap();
        // A server that holds another password's credential fails both ways.
        assert_eq!(server("other", b"salt", 4096, "n=ad=2Cmin=3D,r=cnonce", &server_first, &fin).unwrap_err(), "e=invalid-proof");
        let mut c2 = Scram::with_nonce("admin", "other", "cnonce");
        c2.client_final(&server_first).unwrap();
        assert!(c2.verify_server(&answer).unwrap_err().contains("signature is wrong"));
        assert!(c.verify_server("e=invalid-proof").unwrap_err().contains("invalid-proof"));
    }

    #[test]
    fn a_challenge_that_does_not_extend_the_nonce_or_asks_too_much_is_refused() {
        let mut c = Scram::with_nonce("admin", "pw", "cnonce");
        let salt = B64.encode(b"salt");
        assert!(c.client_final(&format!("r=other,s={salt},i=4096")).unwrap_err().contains("nonce"));
        assert!(c.client_final(&format!("r=cnonce,s={salt},i=4096")).unwrap_err().contains("nonce"));
        assert!(c.client_final(&format!("r=cnonceX,s={salt},i=99999999")).unwrap_err().contains("iterations"));
        assert!(c.client_final("r=cnonceX,i=4096").unwrap_err().contains("s="));
    }

    #[test]
    fn hi_is_pbkdf2_hmac_sha512() {
        // RFC 6070-style vector for PBKDF2-HMAC-SHA512 ("password", "salt", 1 iteration).
        let want = "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce";
        let got: String = hi(b"password", b"salt", 1).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, want);
    }
}
