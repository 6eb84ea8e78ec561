//! Splitting a database URL around its host, to point it at the proxy.

/// `scheme://user@` | `host:port` | `/path` | `query` of a database URL.
pub(super) struct UrlParts<'a> {
    pub(super) scheme_and_user: &'a str,
    pub(super) host_port: &'a str,
    pub(super) path: &'a str,
    pub(super) query: &'a str,
}

impl<'a> UrlParts<'a> {
    pub(super) fn split(url: &'a str) -> UrlParts<'a> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let authority_start = base.find("://").map_or(0, |i| i + 3);
        let path_start = base[authority_start..]
            .find('/')
            .map_or(base.len(), |i| authority_start + i);
        let host_start = base[authority_start..path_start]
            .rfind('@')
            .map_or(authority_start, |i| authority_start + i + 1);
        UrlParts {
            scheme_and_user: &base[..host_start],
            host_port: &base[host_start..path_start],
            path: &base[path_start..],
            query,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_around_the_host() {
        let parts = UrlParts::split("postgres://u:p@db.example:6543/test?sslmode=require&x=1");
        assert_eq!(parts.scheme_and_user, "postgres://u:p@");
        assert_eq!(parts.host_port, "db.example:6543");
        assert_eq!(parts.path, "/test");
        assert_eq!(parts.query, "sslmode=require&x=1");
        let parts = UrlParts::split("mysql://root@127.0.0.1:3306");
        assert_eq!(parts.host_port, "127.0.0.1:3306");
        assert_eq!(parts.path, "");
    }
}
