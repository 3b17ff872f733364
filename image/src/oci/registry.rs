//! A registry, through the Docker/OCI distribution API (`/v2/`): pulling a
//! manifest (a list or index resolved to this host's platform), its config
//! and layers into a local OCI layout, and pushing a layout's image.
//!
//! - Auth: anonymous first; on `401` the challenge is answered as docker
//!   and podman answer it: `Bearer` by a token from its realm (with the
//!   user's credentials when there are any), `Basic` with the credentials.
//!   Credentials are read as podman reads them: `$REGISTRY_AUTH_FILE`,
//!   `$XDG_RUNTIME_DIR/containers/auth.json`,
//!   `~/.config/containers/auth.json`, then `~/.docker/config.json`
//!   (`auths.HOST.auth`, base64 `user:password`).
//! - HTTPS, unless `plain_http` (Apptainer's `--nohttps`), for a registry
//!   on this host.
//! - A dropped connection, and `429`, `502`, `503`, `504`, are tried again
//!   (three tries, one and two seconds apart); `401`, `403`, `404`, `429`
//!   and other failures are errors that name the reference and the way out.
//! - Every blob is checked against its digest as it is written, and only
//!   then renamed to it: a layout holds nothing unchecked. A blob already
//!   in the layout is not fetched again.

use std::io::{self, IsTerminal};
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use ureq::http::{Response, StatusCode};
use ureq::Body;

use super::digest::{Digest, Expect, Verify};
use super::image::{invalid, pick_platform, INDEX_TYPES, JSON_LIMIT};
use super::transport::Reference;
use super::write::{Blob, Layout};
use super::OciError;

/// How to reach the registry.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Plain HTTP (`--nohttps`).
    pub plain_http: bool,
    /// Progress lines on standard error.
    pub progress: bool,
}

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// The host a registry name is reached at.
fn host_of(registry: &str) -> &str {
    if registry == "docker.io" || registry == "index.docker.io" {
        "registry-1.docker.io"
    } else {
        registry
    }
}

/// The user's credentials for `registry`, from the files podman and
/// docker keep them in.
pub fn credentials(registry: &str) -> Option<(String, String)> {
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(std::path::PathBuf::from(f));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(Path::new(&d).join("containers/auth.json"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        files.push(Path::new(&h).join(".config/containers/auth.json"));
        files.push(Path::new(&h).join(".docker/config.json"));
    }
    let keys: Vec<String> = if registry == "docker.io" {
        ["docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        vec![registry.to_string(), format!("https://{registry}"), format!("http://{registry}")]
    };
    for file in files {
        let Ok(bytes) = std::fs::read(&file) else { continue };
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            log::warn!("{}: not JSON; its credentials are not used", file.display());
            continue;
        };
        for key in &keys {
            let Some(auth) = json["auths"][key]["auth"].as_str() else { continue };
            let decoded = base64::engine::general_purpose::STANDARD.decode(auth).ok();
            let text = decoded.and_then(|d| String::from_utf8(d).ok());
            if let Some((user, pass)) = text.as_deref().and_then(|t| t.split_once(':')) {
                log::debug!("credentials for {registry} from {}", file.display());
                return Some((user.to_string(), pass.to_string()));
            }
        }
    }
    None
}

/// Whether a request failed without any answer from the registry (no
/// route, no host, refused, timed out), as opposed to one that came but
/// was wrong (TLS to a plain-HTTP server, a cut transfer).
fn unreachable(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed | ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => matches!(
            io.kind(),
            io::ErrorKind::ConnectionRefused
                | io::ErrorKind::TimedOut
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::NetworkUnreachable
                | io::ErrorKind::NetworkDown
                | io::ErrorKind::AddrNotAvailable
        ),
        _ => false,
    }
}

/// A `WWW-Authenticate` challenge: its scheme and parameters.
#[derive(Debug, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Parses `Scheme k="v", k2=v2` (RFC 7235: quoted strings with `\`
/// escapes, or tokens).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, mut rest) = match header.split_once(char::is_whitespace) {
        Some((s, r)) => (s, r.trim_start()),
        None => (header, ""),
    };
    if scheme.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().to_string();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.push(chars.next()?.1),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &q[end?..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        if key.is_empty() {
            return None;
        }
        params.push((key, value));
        rest = next.trim_start().strip_prefix(',').unwrap_or(next).trim_start();
        if !next.trim_start().is_empty() && !next.trim_start().starts_with(',') {
            return None;
        }
    }
    Some(Challenge { scheme: scheme.to_string(), params })
}

enum Auth {
    None,
    Basic(String),
    Bearer(String),
}

/// What a request sends.
enum Send<'a> {
    Nothing,
    Bytes(&'a [u8], &'a str),
    File(&'a Path),
}

/// A session with one registry, for one repository.
pub struct Client {
    agent: ureq::Agent,
    reference: Reference,
    base: String,
    auth: Auth,
    push: bool,
    /// Whether a 401 was answered already (a second one is an error).
    authenticated: bool,
    progress: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({})", self.base)
    }
}

impl Client {
    /// A client for `reference`'s repository; `push` asks for push rights
    /// too when a token is needed.
    pub fn new(reference: &Reference, opts: &Options, push: bool) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .user_agent(concat!("fr/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let scheme = if opts.plain_http { "http" } else { "https" };
        Client {
            agent,
            reference: reference.clone(),
            base: format!(
                "{scheme}://{}/v2/{}",
                host_of(&reference.registry),
                reference.repository
            ),
            auth: Auth::None,
            push,
            authenticated: false,
            progress: opts.progress && io::stderr().is_terminal(),
        }
    }

    fn error(&self, why: impl std::fmt::Display) -> OciError {
        OciError::new(format!("docker://{}", self.reference), why)
    }

    /// The message for a response that failed, with the way out.
    fn status_error(&self, status: StatusCode, what: &str) -> OciError {
        let host = &self.reference.registry;
        let why = match status.as_u16() {
            401 | 403 => format!(
                "{what}: the registry refused access ({status}); log in with podman login {host} \
                 (fr reads $XDG_RUNTIME_DIR/containers/auth.json and ~/.docker/config.json), or \
                 check that the repository is yours to {}",
                if self.push { "push to" } else { "pull" }
            ),
            404 => format!("{what}: not found ({status}); check the repository and the tag"),
            429 => format!(
                "{what}: the registry asks to slow down ({status}), still after 3 tries; try \
                 again later, or log in for a higher limit"
            ),
            _ => format!("{what}: the registry answered {status}, still after 3 tries"),
        };
        self.error(why)
    }

    /// One request, tried again on a dropped connection and on 429 and
    /// 502-504; a 401 is answered once with the registry's challenge.
    fn request(
        &mut self,
        method: &str,
        url: &str,
        accept: Option<&str>,
        body: Send<'_>,
    ) -> Result<Response<Body>, OciError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let mut req = ureq::http::Request::builder().method(method).uri(url);
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            match &self.auth {
                Auth::None => {}
                Auth::Basic(b) => req = req.header("Authorization", format!("Basic {b}")),
                Auth::Bearer(t) => req = req.header("Authorization", format!("Bearer {t}")),
            }
            let sent = match &body {
                Send::Nothing => req.body(()).map_err(|e| self.error(e)).map(|r| self.agent.run(r)),
                Send::Bytes(b, ct) => req
                    .header("Content-Type", *ct)
                    .body(b.to_vec())
                    .map_err(|e| self.error(e))
                    .map(|r| self.agent.run(r)),
                Send::File(path) => {
                    let file = std::fs::File::open(path)
                        .map_err(|e| self.error(format!("{}: {e}", path.display())))?;
                    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                    req.header("Content-Type", "application/octet-stream")
                        .header("Content-Length", len.to_string())
                        .body(file)
                        .map_err(|e| self.error(e))
                        .map(|r| self.agent.run(r))
                }
            }?;
            let retry = |tries: i32| {
                if tries < 3 {
                    std::thread::sleep(Duration::from_secs(tries as u64));
                    true
                } else {
                    false
                }
            };
            match sent {
                Err(e) => {
                    if retry(tries) {
                        log::debug!("{method} {url}: {e}; trying again");
                        continue;
                    }
                    let mut error = self.error(format!(
                        "{method} {url}: {e} (3 tries){}",
                        if url.starts_with("https:") {
                            "; a registry on this host that speaks plain HTTP needs --nohttps"
                        } else {
                            ""
                        }
                    ));
                    error.unreachable = unreachable(&e);
                    return Err(error);
                }
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && !self.authenticated => {
                    self.authenticated = true;
                    tries = 0;
                    let header = resp
                        .headers()
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    self.authenticate(&header)?;
                }
                Ok(resp)
                    if matches!(resp.status().as_u16(), 429 | 502 | 503 | 504) && retry(tries) =>
                {
                    log::debug!("{method} {url}: {}; trying again", resp.status());
                }
                Ok(resp) => return Ok(resp),
            }
        }
    }

    /// Answers a 401's challenge.
    fn authenticate(&mut self, header: &str) -> Result<(), OciError> {
        let creds = credentials(&self.reference.registry);
        let basic = creds
            .as_ref()
            .map(|(u, p)| base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")));
        let Some(challenge) = parse_challenge(header) else {
            return Err(self.error(format!(
                "the registry asks for authentication with a challenge fr does not read: `{header}`"
            )));
        };
        if challenge.scheme.eq_ignore_ascii_case("basic") {
            return match basic {
                Some(b) => {
                    self.auth = Auth::Basic(b);
                    Ok(())
                }
                None => Err(self.status_error(StatusCode::UNAUTHORIZED, "no credentials")),
            };
        }
        if !challenge.scheme.eq_ignore_ascii_case("bearer") {
            return Err(self.error(format!(
                "the registry asks for `{}` authentication, which fr does not speak",
                challenge.scheme
            )));
        }
        let realm = challenge
            .param("realm")
            .ok_or_else(|| self.error("a Bearer challenge without a realm"))?;
        // A push asks for both rights at once (the registry's challenge to
        // the first HEAD names pull alone, and a token for it would be
        // refused at the upload); a pull takes the challenge's scope.
        let own = format!("repository:{}:pull,push", self.reference.repository);
        let scope = match challenge.param("scope") {
            _ if self.push => own,
            Some(scope) => scope.to_string(),
            None => format!("repository:{}:pull", self.reference.repository),
        };
        let mut req = self.agent.get(realm).query("scope", &scope);
        if let Some(service) = challenge.param("service") {
            req = req.query("service", service);
        }
        if let Some(b) = &basic {
            req = req.header("Authorization", format!("Basic {b}"));
        }
        let mut resp =
            req.call().map_err(|e| self.error(format!("getting a token from {realm}: {e}")))?;
        if !resp.status().is_success() {
            return Err(self.status_error(resp.status(), &format!("a token from {realm}")));
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| self.error(format!("reading the token from {realm}: {e}")))?;
        let json: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| self.error(format!("the token from {realm}: {e}")))?;
        let token = json["token"]
            .as_str()
            .or(json["access_token"].as_str())
            .ok_or_else(|| self.error(format!("{realm} gave no token")))?;
        self.auth = Auth::Bearer(token.to_string());
        Ok(())
    }

    /// GETs a JSON document (a manifest or an index) by tag or digest:
    /// its bytes and media type.
    fn get_manifest(&mut self, reference: &str) -> Result<(Vec<u8>, String), OciError> {
        let url = format!("{}/manifests/{reference}", self.base);
        let mut resp = self.request("GET", &url, Some(ACCEPT), Send::Nothing)?;
        if !resp.status().is_success() {
            return Err(self.status_error(resp.status(), &format!("manifest {reference}")));
        }
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(JSON_LIMIT)
            .read_to_vec()
            .map_err(|e| self.error(format!("manifest {reference}: {e}")))?;
        let media = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_string))
            .or(content_type)
            .unwrap_or_default();
        if let Ok(d) = Digest::parse(reference) {
            let got = Digest::of(&bytes);
            if got != d {
                return Err(self.error(format!("manifest {d}: its content's digest is {got}")));
            }
        }
        Ok((bytes, media))
    }

    /// Fetches blob `digest` into `layout`, checked, unless it is there.
    fn get_blob(
        &mut self,
        layout: &Layout,
        digest: &Digest,
        size: u64,
        what: &str,
    ) -> Result<(), OciError> {
        if layout.dir().join(digest.blob_path()).is_file() {
            return Ok(());
        }
        let url = format!("{}/blobs/{digest}", self.base);
        for attempt in 1..=3 {
            let resp = self.request("GET", &url, None, Send::Nothing)?;
            if !resp.status().is_success() {
                return Err(self.status_error(resp.status(), &format!("{what} {digest}")));
            }
            let (file, tmp) = layout.blob_file().map_err(|e| self.error(e))?;
            let expect = Expect {
                what: format!("{what} {digest}"),
                digest: digest.clone(),
                size: Some(size),
            };
            let mut reader = Verify::new(resp.into_body().into_reader(), expect);
            let mut out = io::BufWriter::new(file);
            let copied = io::copy(&mut reader, &mut out).and_then(|_| {
                use std::io::Write;
                out.flush()
            });
            match copied {
                Ok(()) => {
                    drop(out);
                    return layout.commit(&tmp, digest).map_err(|e| self.error(e));
                }
                Err(e) => {
                    drop(out);
                    let _ = std::fs::remove_file(&tmp);
                    // A digest that does not match is the blob's; a cut
                    // connection is tried again.
                    if e.kind() == io::ErrorKind::InvalidData || attempt == 3 {
                        return Err(self.error(e));
                    }
                    log::debug!("{what} {digest}: {e}; trying again");
                }
            }
        }
        Err(self.error(format!("{what} {digest}: 3 tries")))
    }

    /// Pulls the image into `layout` and tags its manifest `tag`; returns
    /// the manifest's descriptor.
    pub fn pull(&mut self, layout: &Layout, tag: &str) -> Result<Blob, OciError> {
        let (mut bytes, mut media) =
            self.get_manifest(self.reference.wanted().to_string().as_str())?;
        if INDEX_TYPES.contains(&media.as_str()) {
            let index = ImageIndex::from_reader(&bytes[..])
                .map_err(|e| self.error(format!("its index: {}", invalid("image index", &e))))?;
            let all: Vec<&Descriptor> = index.manifests().iter().collect();
            let chosen = pick_platform(&all, &format!("docker://{}", self.reference))?;
            let digest = chosen.digest().to_string();
            (bytes, media) = self.get_manifest(&digest)?;
        }
        let manifest = ImageManifest::from_reader(&bytes[..])
            .map_err(|e| self.error(format!("its manifest: {}", invalid("image manifest", &e))))?;
        let config = manifest.config();
        let config_digest = Digest::parse(config.digest().as_ref()).map_err(|e| self.error(e))?;
        if config.size() > JSON_LIMIT {
            return Err(self.error(format!("config {config_digest}: larger than fr's limit")));
        }
        self.get_blob(layout, &config_digest, config.size(), "config")?;
        let n = manifest.layers().len();
        for (i, l) in manifest.layers().iter().enumerate() {
            let digest = Digest::parse(l.digest().as_ref()).map_err(|e| self.error(e))?;
            let what = format!("layer {} of {n}", i + 1);
            if self.progress && !layout.dir().join(digest.blob_path()).is_file() {
                log::info!("pulling {what} ({}, {} bytes)", digest.short(), l.size());
            }
            self.get_blob(layout, &digest, l.size(), &what)?;
        }
        let blob = layout.put(&media, &bytes).map_err(|e| self.error(e))?;
        layout.tag(&blob, tag).map_err(|e| self.error(e))?;
        Ok(blob)
    }

    /// Whether the registry has blob `digest`.
    fn has_blob(&mut self, digest: &Digest) -> Result<bool, OciError> {
        let url = format!("{}/blobs/{digest}", self.base);
        let resp = self.request("HEAD", &url, None, Send::Nothing)?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status_error(resp.status(), &format!("blob {digest}"))),
        }
    }

    /// Uploads the blob at `path` as `digest`, unless the registry has it.
    fn put_blob(&mut self, path: &Path, digest: &Digest, what: &str) -> Result<(), OciError> {
        if self.has_blob(digest)? {
            return Ok(());
        }
        let url = format!("{}/blobs/uploads/", self.base);
        let resp = self.request("POST", &url, None, Send::Nothing)?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.status_error(resp.status(), &format!("starting the upload of {what}")));
        }
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.error("the registry gave no upload location"))?;
        let location = if location.starts_with('/') {
            let origin: String = self.base.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
            format!("{origin}{location}")
        } else {
            location.to_string()
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={digest}");
        let resp = self.request("PUT", &put, None, Send::File(path))?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.status_error(resp.status(), &format!("uploading {what} {digest}")));
        }
        Ok(())
    }

    /// Pushes the image `tag` of the layout at `dir` to the reference's
    /// repository and tag; returns the manifest's digest.
    pub fn push(&mut self, dir: &Path, tag: &str) -> Result<Digest, OciError> {
        let blobs = super::blobs::DirBlobs::new(dir);
        let image =
            super::image::Image::from_layout(&blobs, Some(tag), &dir.display().to_string())?;
        let manifest = image.manifest.clone().unwrap_or_default();
        self.put_blob(&dir.join(image.config_digest.blob_path()), &image.config_digest, "config")?;
        let n = image.layers.len();
        for (i, l) in image.layers.iter().enumerate() {
            let Some((digest, _)) = &l.blob else { continue };
            if self.progress {
                log::info!("pushing layer {} of {n} ({})", i + 1, digest.short());
            }
            self.put_blob(&dir.join(&l.path), digest, &format!("layer {} of {n}", i + 1))?;
        }
        let media = serde_json::from_slice::<serde_json::Value>(&manifest)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_string))
            .unwrap_or_else(|| super::write::MANIFEST_TYPE.into());
        let target = self.reference.tag.clone().unwrap_or_else(|| "latest".into());
        let url = format!("{}/manifests/{target}", self.base);
        let resp = self.request("PUT", &url, None, Send::Bytes(&manifest, &media))?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.status_error(resp.status(), "putting the manifest"));
        }
        Ok(image.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_as_rfc_7235_writes_them() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("scope"), Some("repository:library/busybox:pull"));
        let c = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!((c.scheme.as_str(), c.param("realm")), ("Basic", Some("Registry Realm")));
        let c = parse_challenge(r#"Bearer realm="a\"b", x=tok"#).unwrap();
        assert_eq!((c.param("realm"), c.param("x")), (Some("a\"b"), Some("tok")));
        assert!(parse_challenge("").is_none());
        assert!(parse_challenge(r#"Bearer realm="open"#).is_none());
        assert!(parse_challenge(r#"Bearer realm="a" junk"#).is_none());
    }

    #[test]
    fn docker_hub_is_reached_at_its_registry_host() {
        assert_eq!(host_of("docker.io"), "registry-1.docker.io");
        assert_eq!(host_of("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
