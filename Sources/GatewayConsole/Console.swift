import BigInt
import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import HTTPTypes
import Hummingbird
import Logging
import Mustache
import NIOCore
import PostgresNIO
import ServiceLifecycle

/// The console's request context: Hummingbird's core storage and the client's address (for the
/// sign-in rate limit and the audit).
public struct ConsoleContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let clientIP: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        clientIP = source.channel.remoteAddress?.ipAddress ?? ""
    }
}

/// The operator console: server-rendered pages over the review, query and queue services (the same
/// ones the admin API and gatewayctl use). Every action is a form POST that works without JavaScript.
public struct Console: Sendable {
    public let config: GatewayConfig
    public let database: Database
    public let logger: Logger
    let library: MustacheLibrary
    /// Seals and opens console users' TOTP secrets (`console.totp_key_*`).
    let secrets: TOTPSecretBox

    /// The session cookie's name.
    public static let cookieName = "gw_console"

    /// The hot wallet header of the page being rendered (HTML), read once per request by `page`.
    @TaskLocal static var hotHeaderHTML: String?

    public init(config: GatewayConfig, database: Database, logger: Logger) throws {
        self.config = config
        self.database = database
        self.logger = logger
        self.library = try Templates.library()
        self.secrets = try TOTPSecretBox.load(config.console, relativeTo: config.source)
    }

    var settings: ConsoleConfig { config.console }

    // MARK: Routes

    /// Adds the console's routes (and its security middleware) to `router`.
    public func add(to router: Router<ConsoleContext>) {
        router.add(middleware: SecurityMiddleware(secure: settings.secureCookies))
        router.get("/healthz") { _, _ in Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "ok\n"))) }
        // For Prometheus: that the console is up (GatewayProcessDown) and the process-wide metrics; no reviewer data.
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: Observability.exposition())))
        }
        router.get("/static/console.css") { _, _ in Self.asset(Assets.css, type: "text/css; charset=utf-8") }
        router.get("/static/console.js") { _, _ in Self.asset(Assets.js, type: "text/javascript; charset=utf-8") }
        router.get("/") { _, _ in Self.redirect("/queue") }
        router.get("/signin") { req, _ in
            let next = Self.safeNext(req.uri.queryParameters["next"].map(String.init))
            return self.html(.ok, "signin", title: "Sign in", user: nil, ["next": next, "name": ""])
        }
        router.post("/signin") { req, ctx in await self.signIn(req, ctx) }
        router.post("/signout") { req, ctx in
            await self.page(req, ctx) { user in
                if let token = req.cookies[Self.cookieName]?.value {
                    try await ConsoleAccounts.signOut(token, user: user, database: self.database, logger: self.logger)
                }
                var r = Self.redirect("/signin")
                r.setCookie(self.cookie(value: "", maxAge: 0))
                return r
            }
        }
        router.get("/queue") { req, ctx in await self.page(req, ctx) { user in try await self.queuePage(req, user: user) } }
        router.get("/queue/tabs") { req, ctx in await self.page(req, ctx) { user in try await self.queueTabs(req, user: user) } }
        router.get("/hotbar") { req, ctx in await self.page(req, ctx) { _ in Self.fragment(Self.hotHeaderHTML ?? "") } }
        router.get("/users") { req, ctx in
            await self.page(req, ctx) { user in
                try await self.usersPage(user: user, status: .ok, done: req.uri.queryParameters["done"].flatMap { Self.doneMessages[String($0)] })
            }
        }
        router.post("/users/:name/:change") { req, ctx in
            await self.page(req, ctx) { user in
                try await self.changeUser(req, name: ctx.parameters.get("name") ?? "", change: ctx.parameters.get("change") ?? "", user: user)
            }
        }
        router.get("/queue/rows") { req, ctx in await self.page(req, ctx) { user in try await self.queueRows(req, user: user) } }
        router.get("/queue.csv") { req, ctx in await self.page(req, ctx) { user in try await self.queueCSV(req, user: user) } }
        router.get("/withdrawals/:id") { req, ctx in
            await self.page(req, ctx) { user in
                let done = req.uri.queryParameters["done"].flatMap { Self.doneMessages[String($0)] }
                return try await self.decisionPage(try Self.id(ctx), user: user, status: .ok, message: nil, done: done)
            }
        }
        for approve in [true, false] {
            router.post("/withdrawals/:id/\(approve ? "approve" : "reject")") { req, ctx in
                await self.page(req, ctx) { user in try await self.decide(req, id: try Self.id(ctx), approve: approve, user: user) }
            }
        }
        router.post("/bulk") { req, ctx in await self.page(req, ctx) { user in try await self.bulk(req, user: user) } }
        router.post("/jobs/:id/retry") { req, ctx in await self.page(req, ctx) { user in try await self.retryJob(req, id: try Self.id(ctx), user: user) } }
        router.post("/callbacks/:id/resend") { req, ctx in
            await self.page(req, ctx) { user in try await self.resendCallback(req, id: try Self.id(ctx), user: user) }
        }
        router.get("/pipeline") { req, ctx in
            await self.page(req, ctx) { user in
                let sections = try await self.pipelineSections(user: user)
                let done = req.uri.queryParameters["done"].flatMap { Self.doneMessages[String($0)] }
                return self.html(.ok, "pipeline", title: "Pipeline", user: user, sections, flash: done.map { ("ok", $0) })
            }
        }
        router.get("/pipeline/fragment") { req, ctx in
            await self.page(req, ctx) { user in
                Self.fragment(self.library.render(try await self.pipelineSections(user: user), withTemplate: "pipeline_sections") ?? "")
            }
        }
        router.get("/audit") { req, ctx in await self.page(req, ctx) { user in try await self.auditPage(req, user: user, csv: false) } }
        router.get("/audit.csv") { req, ctx in await self.page(req, ctx) { user in try await self.auditPage(req, user: user, csv: true) } }
    }

    /// Messages a redirect may name (`?done=`): fixed text, never echoed from the request.
    static let doneMessages = [
        "approved": "Approved: the payment is queued.", "first_approval": "First approval recorded: a second, different reviewer must approve.",
        "rejected": "Rejected.", "retried": "Job put back in the queue.", "resent": "Callback queued again.",
        "disabled": "User disabled; their sessions ended.", "enabled": "User enabled.", "role": "Role and level changed.",
    ]

    // MARK: Sessions and errors

    /// Runs `body` for the signed-in user; otherwise sends the browser to sign in (GET) or refuses (401).
    func page(_ req: Request, _ ctx: ConsoleContext, _ body: (ConsoleUser) async throws -> Response) async -> Response {
        let user: ConsoleUser?
        do {
            user = try await req.cookies[Self.cookieName].asyncFlatMap {
                try await ConsoleAccounts.session($0.value, idleTimeout: self.settings.idleTimeout, database: self.database, logger: self.logger)
            }
        } catch {
            return unavailable(error)
        }
        guard let user else {
            if req.method == .get || req.method == .head {
                var r = Self.redirect("/signin?next=\(Views.encode(req.uri.path + (req.uri.query.map { "?\($0)" } ?? "")))")
                r.setCookie(cookie(value: "", maxAge: 0))
                return r
            }
            return html(.unauthorized, "message", title: "Signed out", user: nil,
                        ["heading": "Signed out", "text": "Your session ended (signed out or idle too long). Sign in again; nothing was changed.",
                         "back": "/signin"])
        }
        do {
            let hot = try await hotHeader()
            return try await Self.$hotHeaderHTML.withValue(hot) { try await body(user) }
        } catch let e as ServiceError {
            switch e {
            case .notFound: return message(.notFound, "Not found", e.description, user: user)
            case .invalid: return message(.unprocessableContent, "Not done", e.description, user: user)
            case .conflict: return message(.conflict, "Not done", e.description, user: user)
            }
        } catch let e as ReviewNotAllowed {
            return message(.forbidden, "Not allowed", e.description, user: user)
        } catch let e as ConsoleRefusal {
            return message(e.status, e.heading, e.text, user: user)
        } catch {
            return unavailable(error)
        }
    }

    func unavailable(_ error: any Error) -> Response {
        logger.error("console request failed", metadata: ["error": "\(DatabaseErrors.describe(error))", "error.type": "\(type(of: error))"])
        return html(.serviceUnavailable, "message", title: "Unavailable", user: nil,
                    ["heading": "Temporarily unavailable", "text": "The database did not answer; nothing was changed. Try again."])
    }

    func message(_ status: HTTPResponse.Status, _ heading: String, _ text: String, user: ConsoleUser?, back: String? = nil) -> Response {
        var data: [String: Any] = ["heading": heading, "text": text]
        if let back { data["back"] = back }
        return html(status, "message", title: heading, user: user, data)
    }

    func cookie(value: String, maxAge: Int?) -> Cookie {
        Cookie(name: Self.cookieName, value: value, maxAge: maxAge, path: "/", secure: settings.secureCookies, httpOnly: true, sameSite: .strict)
    }

    func signIn(_ req: Request, _ ctx: ConsoleContext) async -> Response {
        do {
            let form = try await Form.read(req)
            let name = form["name"].trimmingCharacters(in: .whitespaces).lowercased()
            let next = Self.safeNext(form["next"])
            do {
                let (token, _) = try await ConsoleAccounts.signIn(name: name, password: form["password"], code: form["code"], ip: ctx.clientIP,
                                                                 config: settings, secrets: secrets, database: database, logger: logger)
                var r = Self.redirect(next)
                r.setCookie(cookie(value: token, maxAge: nil))
                return r
            } catch let failure as SignInFailure {
                let text: String
                let status: HTTPResponse.Status
                switch failure {
                case .rateLimited:
                    (text, status) = ("Too many failed sign-ins; wait a few minutes and try again.", .tooManyRequests)
                case .wrong:
                    (text, status) = ("Wrong name, password or code.", .unauthorized)
                }
                return html(status, "signin", title: "Sign in", user: nil, ["next": next, "name": name], flash: ("error", text))
            }
        } catch {
            return unavailable(error)
        }
    }

    /// A local path to go to after sign-in (never another site).
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), !next.contains("\\"), !next.hasPrefix("/signin") else { return "/queue" }
        return next
    }

    // MARK: Rendering

    func html(_ status: HTTPResponse.Status, _ template: String, title: String, user: ConsoleUser?, _ data: [String: Any],
              flash: (kind: String, text: String)? = nil) -> Response {
        var context = data
        context["user"] = user.map(Self.userView) as Any
        let content = library.render(context, withTemplate: template) ?? ""
        var layout: [String: Any] = ["title": title, "content": content, "page": template]
        if let user {
            layout["user"] = Self.userView(user)
            layout["hotbar"] = Self.hotHeaderHTML ?? ""
        }
        if let flash { layout["flash"] = ["kind": flash.kind, "text": flash.text] }
        let page = library.render(layout, withTemplate: "layout") ?? ""
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: page)))
    }

    static func userView(_ u: ConsoleUser) -> [String: Any] {
        ["name": u.name, "roleText": u.role == .reviewer || (u.role == .admin && u.reviewLevel > 0) ? "\(u.role.rawValue), level \(u.reviewLevel)" : u.role.rawValue,
         "canReadAudit": u.canReadAudit, "canDecide": u.canDecide, "canManageUsers": u.canManageUsers]
    }

    static func fragment(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func asset(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func redirect(_ to: String) -> Response { Response(status: .seeOther, headers: [.location: to]) }

    static func csvResponse(_ text: String, filename: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"\(filename)\""],
                 body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func id(_ ctx: ConsoleContext) throws -> Int64 {
        guard let text = ctx.parameters.get("id"), let id = Int64(text), id > 0 else { throw ServiceError.invalid("the id must be a positive integer") }
        return id
    }
}

/// A refusal with its own status and words.
struct ConsoleRefusal: Error {
    var status: HTTPResponse.Status
    var heading: String
    var text: String
}

extension Optional {
    func asyncFlatMap<U>(_ transform: (Wrapped) async throws -> U?) async rethrows -> U? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}

/// An `application/x-www-form-urlencoded` body: every value of a name, in order.
struct Form: Sendable {
    var pairs: [(String, String)]

    static func read(_ req: Request) async throws -> Form {
        let buffer = try await req.body.collect(upTo: 1 << 20)
        return Form(parsing: String(buffer: buffer))
    }

    init(parsing text: String) {
        pairs = text.split(separator: "&").map { part in
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String { String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            return (decode(kv[0]), kv.count > 1 ? decode(kv[1]) : "")
        }
    }

    /// The first value of `name`, or "".
    subscript(_ name: String) -> String { pairs.first { $0.0 == name }?.1 ?? "" }
    func all(_ name: String) -> [String] { pairs.filter { $0.0 == name }.map(\.1) }
}

/// Security headers on every response, and the cross-site check on every non-GET request: it must
/// say `Sec-Fetch-Site: same-origin`, or (browsers that do not send that header) carry an `Origin`
/// equal to the console's own. A request with neither is refused: every browser we support sends
/// one of them on a form POST, and a POST without them is not from our pages.
struct SecurityMiddleware: RouterMiddleware {
    typealias Context = ConsoleContext
    let secure: Bool

    static let csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; "
        + "frame-ancestors 'none'; base-uri 'none'"

    func handle(_ request: Request, context: ConsoleContext, next: (Request, ConsoleContext) async throws -> Response) async throws -> Response {
        var response: Response
        if request.method != .get && request.method != .head && !Self.sameOrigin(request, secure: secure) {
            response = Response(status: .forbidden, headers: [.contentType: "text/plain; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: "Refused: this request did not come from the console's own pages (cross-site).\n")))
        } else {
            response = try await next(request, context)
        }
        response.headers[.contentSecurityPolicy] = Self.csp
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.xFrameOptions] = "DENY"
        response.headers[.referrerPolicy] = "same-origin"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }

    static func sameOrigin(_ request: Request, secure: Bool) -> Bool {
        if let site = request.headers[.secFetchSite] { return site == "same-origin" }
        guard let origin = request.headers[.origin], let host = request.head.authority else { return false }
        return origin == "\(secure ? "https" : "http")://\(host)"
    }
}

extension HTTPField.Name {
    /// `X-Frame-Options` (not among HTTPTypes' names).
    public static let xFrameOptions = HTTPField.Name("X-Frame-Options")!
    /// `Referrer-Policy`.
    public static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
    /// `Sec-Fetch-Site`: which site a browser says a request comes from.
    public static let secFetchSite = HTTPField.Name("Sec-Fetch-Site")!
}
