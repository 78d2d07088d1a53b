import Foundation

/// One PostgreSQL server, `host:port` (IPv6 as `[::1]:5432`).
public struct DatabaseEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int = 5432) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// `host[:port]` (the port defaults to `defaultPort`), `[v6]:port` for IPv6.
    public init(parsing text: String, defaultPort: Int = 5432, key: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces)
        var host = t, portText: Substring?
        if t.hasPrefix("[") {
            guard let close = t.firstIndex(of: "]") else { throw ConfigError(key: key, "unclosed '[' in host '\(text)'") }
            host = String(t[t.index(after: t.startIndex)..<close])
            let rest = t[t.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { throw ConfigError(key: key, "expected [address]:port, found '\(text)'") }
                portText = rest.dropFirst()
            }
        } else if let colon = t.lastIndex(of: ":") {
            host = String(t[..<colon])
            portText = t[t.index(after: colon)...]
        }
        guard !host.isEmpty else { throw ConfigError(key: key, "a host is empty in '\(text)'") }
        var port = defaultPort
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else {
                throw ConfigError(key: key, "expected a port from 1 to 65535 after '\(host)', found '\(portText)'")
            }
            port = p
        }
        self.init(host: host, port: port)
    }

    /// A comma-separated list, as libpq's multi-host URLs and `PGHOST` write it.
    public static func list(_ text: String, defaultPort: Int = 5432, key: String) throws -> [DatabaseEndpoint] {
        // Split on commas outside brackets (an IPv6 address has colons, never commas).
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard !parts.isEmpty, parts.allSatisfy({ !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
            throw ConfigError(key: key, "expected host[:port] or a comma-separated list of them, found '\(text)'")
        }
        return try parts.map { try DatabaseEndpoint(parsing: $0, defaultPort: defaultPort, key: key) }
    }
}

/// How to reach PostgreSQL: one server, or the nodes of a highly available formation (libpq's multi-host form), in
/// which the processes always write to the one node that accepts writes (`PrimaryRouter` in GatewayRuntime).
public struct DatabaseConfig: Sendable, Equatable {
    public enum TLSMode: String, Sendable { case disable, prefer, require }

    /// The nodes, tried for the writable one (one entry for a single server). Never empty.
    public var hosts: [DatabaseEndpoint]
    public var user: String
    /// Never logged; see `redactedDescription`.
    public var password: String?
    /// The systemd credential holding the password (`database.password_credential`); see `resolvePassword`.
    public var passwordCredential: String?
    public var database: String
    public var tls: TLSMode
    public var poolSize: Int
    public var connectTimeout: Duration
    /// A pg_auto_failover monitor (`database.monitor_url`) whose `pgautofailover.get_nodes()` refreshes `hosts`.
    public var monitor: MonitorConfig?
    /// How often each process checks that the node it writes to still accepts writes (`database.probe_interval`).
    public var probeInterval: Duration = .seconds(1)
    /// How long a check of one node may take: connecting and `SHOW transaction_read_only` (`database.probe_timeout`).
    public var probeTimeout: Duration = .seconds(1)

    /// A pg_auto_failover monitor: where it is and which formation's nodes to ask for.
    public struct MonitorConfig: Sendable, Equatable {
        public var endpoint: DatabaseEndpoint
        public var user: String
        public var password: String?
        public var database: String
        public var tls: TLSMode
        public var formation: String

        public init(endpoint: DatabaseEndpoint, user: String = "autoctl_node", password: String? = nil, database: String = "pg_auto_failover",
                    tls: TLSMode = .disable, formation: String = "default") {
            self.endpoint = endpoint
            self.user = user
            self.password = password
            self.database = database
            self.tls = tls
            self.formation = formation
        }

        /// `postgres://user@host:port/database`, without the password.
        public var redactedDescription: String { "postgres://\(user)@\(endpoint)/\(database) (formation \(formation))" }
    }

    public init(host: String = "127.0.0.1", port: Int = 5432, user: String = "gateway", password: String? = nil,
                database: String = "gateway", tls: TLSMode = .disable, poolSize: Int = 10, connectTimeout: Duration = .seconds(10)) {
        self.hosts = [DatabaseEndpoint(host: host, port: port)]
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
        self.poolSize = poolSize
        self.connectTimeout = connectTimeout
    }

    /// The first node's host (the only one of a single server).
    public var host: String { hosts[0].host }
    /// The first node's port.
    public var port: Int { hosts[0].port }

    /// `postgres://user@host:port[,host:port…]/db`, without the password.
    public var redactedDescription: String { "postgres://\(user)@\(hosts.map(\.description).joined(separator: ","))/\(database)" }

    /// A libpq connection string (keyword/value form, values quoted) that reaches the node accepting writes: libpq tries
    /// the hosts in turn with `target_session_attrs=read-write` (migrations run there).
    public var libpqConnectionString: String {
        func q(_ s: String) -> String { "'" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'" }
        var parts = ["host=\(q(hosts.map(\.host).joined(separator: ",")))", "port=\(q(hosts.map { String($0.port) }.joined(separator: ",")))",
                     "user=\(q(user))", "dbname=\(q(database))", "sslmode=\(tls.rawValue)",
                     "connect_timeout=\(max(1, connectTimeout.components.seconds))", "target_session_attrs=read-write"]
        if let password { parts.append("password=\(q(password))") }
        return parts.joined(separator: " ")
    }

    /// The password from `password_credential` under systemd, unless the environment gave one (environment variables
    /// override secrets). Outside systemd the URL's or `POSTGRES_PASSWORD` must give it: a configured credential
    /// with no password anywhere is an error naming it, not a connection refused later for a reason nobody sees.
    mutating func resolvePassword(_ env: [String: String]) throws {
        guard let name = passwordCredential else { return }
        let key = "database.password_credential"
        if env["POSTGRES_PASSWORD"] != nil || (env["DATABASE_URL"].flatMap { try? PostgresURL.parse($0, key: "DATABASE_URL").password } != nil) {
            return
        }
        if let text = try SystemdCredentials.read(name, key: key, environment: env) {
            password = text.trimmingCharacters(in: .newlines)
        } else if password == nil {
            throw ConfigError(key: key, "credential '\(name)' cannot be read: \(SystemdCredentials.directoryVariable) is not set (not started by "
                + "systemd with LoadCredential=\(name):PATH); give the password with POSTGRES_PASSWORD or DATABASE_URL instead")
        }
    }

    /// Environment overrides: `DATABASE_URL`, then the `POSTGRES_*` variables one by one. `POSTGRES_HOSTNAME` may list
    /// several hosts (`h1,h2,h3`) and `POSTGRES_PORT` one port for all or one per host, as libpq's `PGHOST`/`PGPORT`.
    public mutating func applyEnvironment(_ env: [String: String]) throws {
        if let url = env["DATABASE_URL"], !url.isEmpty { try apply(url: url, key: "DATABASE_URL") }
        if let h = env["POSTGRES_HOSTNAME"], !h.isEmpty {
            // A bare host keeps the configured port (POSTGRES_PORT below may change it).
            hosts = try DatabaseEndpoint.list(h, defaultPort: hosts[0].port, key: "POSTGRES_HOSTNAME")
        }
        if let p = env["POSTGRES_PORT"], !p.isEmpty {
            let ports = try p.split(separator: ",", omittingEmptySubsequences: false).map { text -> Int in
                guard let port = Int(text.trimmingCharacters(in: .whitespaces)), (1...65535).contains(port) else {
                    throw ConfigError(key: "POSTGRES_PORT", "expected a port number (or one per host, comma-separated), found '\(p)'")
                }
                return port
            }
            if ports.count == 1 {
                hosts = hosts.map { DatabaseEndpoint(host: $0.host, port: ports[0]) }
            } else {
                guard ports.count == hosts.count else {
                    throw ConfigError(key: "POSTGRES_PORT", "\(ports.count) ports for \(hosts.count) hosts: give one port, or one per host")
                }
                hosts = zip(hosts, ports).map { DatabaseEndpoint(host: $0.host, port: $1) }
            }
        }
        if let u = env["POSTGRES_USER"], !u.isEmpty { user = u }
        if let pw = env["POSTGRES_PASSWORD"] { password = pw }
        if let d = env["POSTGRES_DB"], !d.isEmpty { database = d }
    }

    /// Applies `postgres://user:password@host:port[,host:port…]/database?sslmode=…&target_session_attrs=read-write`.
    public mutating func apply(url text: String, key: String) throws {
        let url = try PostgresURL.parse(text, key: key)
        if !url.hosts.isEmpty { hosts = url.hosts }
        if let u = url.user { user = u }
        if let p = url.password { password = p }
        if let d = url.database { database = d }
        if let t = url.tls { tls = t }
    }
}

/// A `postgres://` URL as libpq reads it, multi-host form included: `postgres://user:pw@h1:5432,h2:5432/db?…`.
/// Foundation's URL parser refuses the host list, so it is read here.
public struct PostgresURL: Sendable, Equatable {
    public var user: String?
    public var password: String?
    public var hosts: [DatabaseEndpoint]
    public var database: String?
    public var tls: DatabaseConfig.TLSMode?

    /// Parses `text`; errors name `key` and what is wrong, never the password.
    public static func parse(_ text: String, key: String) throws -> PostgresURL {
        let example = "expected a URL like postgres://user:password@host:5432/database or postgres://user@h1:5432,h2:5432/database"
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        guard let schemeEnd = rest.range(of: "://"), ["postgres", "postgresql"].contains(rest[..<schemeEnd.lowerBound].lowercased()) else {
            throw ConfigError(key: key, example)
        }
        rest = rest[schemeEnd.upperBound...]
        var query: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        var url = PostgresURL(user: nil, password: nil, hosts: [], database: nil, tls: nil)
        if let at = rest.lastIndex(of: "@") {
            let info = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = info.firstIndex(of: ":") {
                url.user = decode(info[..<colon])
                url.password = decode(info[info.index(after: colon)...])
            } else {
                url.user = decode(info)
            }
            if url.user == "" { url.user = nil }
        }
        if !rest.isEmpty {
            guard let hostText = decode(rest) else { throw ConfigError(key: key, example) }
            url.hosts = try DatabaseEndpoint.list(hostText, key: key)
        }
        if !path.isEmpty { url.database = decode(path) }
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let kv = pair.split(separator: "=", maxSplits: 1)
            let name = String(kv[0]), value = kv.count > 1 ? decode(kv[1]) ?? "" : ""
            switch name {
            case "sslmode":
                guard let mode = DatabaseConfig.TLSMode(rawValue: value) else { throw ConfigError(key: key, "sslmode must be disable, prefer or require") }
                url.tls = mode
            case "target_session_attrs":
                // The gateway writes: it always uses the node that accepts writes, whatever else is listed.
                guard ["read-write", "primary", "any"].contains(value) else {
                    throw ConfigError(key: key, "target_session_attrs=\(value): the gateway writes, so only read-write (or primary, any) is understood")
                }
            default:
                throw ConfigError(key: key, "unsupported URL parameter '\(name)' (sslmode and target_session_attrs are understood)")
            }
        }
        return url
    }

    static func decode<S: StringProtocol>(_ s: S) -> String? { String(s).removingPercentEncoding }
}
