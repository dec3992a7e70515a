//! Test certificates (a throw-away CA and leaves, made with rcgen) and a blocking rustls
//! client, for the TLS tests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A certificate authority made for one test.
pub struct Pki {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A PEM certificate and its PEM key.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        Pki { issuer: CertifiedIssuer::self_signed(p, key).expect("CA certificate") }
    }

    pub fn ca_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf for the given DNS names / IP addresses, plus optional URI SANs.
    pub fn leaf(&self, names: &[&str], uris: &[&str], common_name: &str) -> Leaf {
        let mut p =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("leaf params");
        for u in uris {
            p.subject_alt_names.push(SanType::URI(u.to_string().try_into().expect("URI SAN")));
        }
        p.distinguished_name.push(DnType::CommonName, common_name);
        let key = KeyPair::generate().expect("leaf key");
        let cert = p.signed_by(&key, &self.issuer).expect("sign leaf");
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }
}

/// A client trusting `ca_pem`, presenting `client` if given, offering `alpn`.
pub fn client_config(ca_pem: &str, client: Option<&Leaf>, alpn: &[&str]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.expect("CA PEM")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let mut cfg = match client {
        Some(l) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(l.cert_pem.as_bytes()).map(|c| c.expect("cert PEM")).collect();
            let key = PrivateKeyDer::from_pem_slice(l.key_pem.as_bytes()).expect("key PEM");
            b.with_client_auth_cert(chain, key).expect("client cert")
        }
        None => b.with_no_client_auth(),
    };
    cfg.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Arc::new(cfg)
}

pub type Client = StreamOwned<ClientConnection, TcpStream>;

/// Connects to 127.0.0.1:`port` with SNI `name` and completes the handshake.
pub fn connect(port: u16, cfg: Arc<ClientConfig>, name: &str) -> std::io::Result<Client> {
    let sock = TcpStream::connect(("127.0.0.1", port))?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let server = ServerName::try_from(name.to_string()).map_err(std::io::Error::other)?;
    let conn = ClientConnection::new(cfg, server).map_err(std::io::Error::other)?;
    let mut s = StreamOwned::new(conn, sock);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// Writes `msg` and reads the same number of bytes back (an echo upstream).
pub fn round_trip(c: &mut Client, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    c.write_all(msg)?;
    c.flush()?;
    let mut back = vec![0u8; msg.len()];
    c.read_exact(&mut back)?;
    Ok(back)
}

/// The server certificate the client saw (DER of the leaf).
pub fn peer_leaf(c: &Client) -> Vec<u8> {
    c.conn.peer_certificates().and_then(|p| p.first()).map(|d| d.as_ref().to_vec()).unwrap_or_default()
}
