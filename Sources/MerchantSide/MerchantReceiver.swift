import Crypto
import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A merchant's callback endpoint, written from udun-protocol.md §5 and the Standard Webhooks spec
/// (not from our sender's code): it verifies both signatures of every callback and answers as
/// told. The tests' receiver, and the demo merchant of `gatewayctl demo`.
public final class MerchantReceiver: Sendable {
    /// One callback as received.
    public struct Received: Sendable {
        public var path: String
        public var form: [String: String]
        public var rawBody: String
        public var webhookID: String?
        public var webhookTimestamp: String?
        public var webhookSignature: String?
        /// md5(body + key + nonce + timestamp) matched.
        public var udunSignatureValid: Bool
        /// v1 HMAC-SHA256 over id.timestamp.body matched, and the timestamp is within 5 minutes.
        public var webhookSignatureValid: Bool
        /// The parsed `body` JSON.
        public var body: JSONValue?
        public var answered: Int
        public var at: ContinuousClock.Instant
    }

    /// What the receiver answers: a status per request in turn, then `defaultStatus`; paths in
    /// `hangPaths` never answer (until the client gives up).
    public struct Behaviour: Sendable {
        public var queued: [Int]
        public var defaultStatus: Int
        public var hangPaths: Set<String>
        /// A fixed answer per path, before `queued`.
        public var statusByPath: [String: Int]
        /// How long a hanging path holds its request.
        public var hang: Duration

        public init(queued: [Int] = [], defaultStatus: Int = 200, hangPaths: Set<String> = [], statusByPath: [String: Int] = [:],
                    hang: Duration = .seconds(4)) {
            self.queued = queued
            self.defaultStatus = defaultStatus
            self.hangPaths = hangPaths
            self.statusByPath = statusByPath
            self.hang = hang
        }
    }

    private let state = Mutex<(received: [Received], behaviour: Behaviour)>(([], Behaviour()))
    private let key: String
    private let secret: String
    private let portBox = PortBox()
    private let onReceive: (@Sendable (Received) -> Void)?
    private let group: ServiceGroup
    private let runner: Task<Void, any Error>

    /// Starts a receiver on a free loopback port for a merchant with this API key and webhook secret;
    /// `onReceive` sees every callback as it arrives.
    public init(apiKey: String, webhookSecret: String, onReceive: (@Sendable (Received) -> Void)? = nil) async throws {
        self.key = apiKey
        self.secret = webhookSecret
        self.onReceive = onReceive
        let router = Router()
        let (started, startedCont) = AsyncStream<Void>.makeStream()
        let box = Mutex<MerchantReceiver?>(nil)
        router.post("**") { request, _ -> Response in
            guard let receiver = box.withLock({ $0 }) else { return Response(status: .serviceUnavailable) }
            return try await receiver.receive(request)
        }
        let portBox = self.portBox
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in
                                  portBox.value.withLock { $0 = channel.localAddress?.port }
                                  startedCont.yield()
                              }, logger: Logger(label: "merchant.receiver"))
        let group = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "merchant.receiver")))
        self.group = group
        self.runner = Task { try await group.run() }
        box.withLock { $0 = self }
        for await _ in started { break }
    }

    /// The receiver's base URL, e.g. `http://127.0.0.1:40123`.
    public var baseURL: String { "http://127.0.0.1:\(portBox.value.withLock { $0 } ?? 0)" }

    public var received: [Received] { state.withLock { $0.received } }

    public func setBehaviour(_ b: Behaviour) { state.withLock { $0.behaviour = b } }

    /// Stops the server.
    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await runner.value
    }

    func receive(_ request: Request) async throws -> Response {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        let raw = String(buffer: buffer)
        let form = Self.parseForm(raw)
        let path = request.uri.path
        let udunValid: Bool = {
            guard let body = form["body"], let nonce = form["nonce"], let ts = form["timestamp"], let sign = form["sign"] else { return false }
            return UdunSignature.constantTimeEqual(UdunSignature.sign(body: body, key: key, nonce: nonce, timestamp: ts), sign)
        }()
        let id = request.headers[HTTPField.Name("webhook-id")!]
        let ts = request.headers[HTTPField.Name("webhook-timestamp")!]
        let sig = request.headers[HTTPField.Name("webhook-signature")!]
        let webhookValid: Bool = {
            guard let id, let ts, let sig, let t = Int64(ts), abs(Int64(Date().timeIntervalSince1970) - t) <= 300,
                  let key = Data(base64Encoded: String(secret.dropFirst("whsec_".count))) else { return false }
            let mac = HMAC<SHA256>.authenticationCode(for: Data("\(id).\(ts).\(raw)".utf8), using: SymmetricKey(data: key))
            let expected = Data(mac).base64EncodedString()
            // The header may hold several space-separated signatures.
            return sig.split(separator: " ").contains { $0.hasPrefix("v1,") && UdunSignature.constantTimeEqual(String($0.dropFirst(3)), expected) }
        }()
        let (status, hang, hangFor) = state.withLock { s -> (Int, Bool, Duration) in
            let hang = s.behaviour.hangPaths.contains(path)
            if let fixed = s.behaviour.statusByPath[path] { return (fixed, hang, s.behaviour.hang) }
            let status = s.behaviour.queued.isEmpty ? s.behaviour.defaultStatus : s.behaviour.queued.removeFirst()
            return (status, hang, s.behaviour.hang)
        }
        let record = Received(path: path, form: form, rawBody: raw, webhookID: id, webhookTimestamp: ts, webhookSignature: sig,
                              udunSignatureValid: udunValid, webhookSignatureValid: webhookValid,
                              body: form["body"].flatMap { try? JSONValue.parse($0) }, answered: hang ? 0 : status, at: .now)
        state.withLock { $0.received.append(record) }
        onReceive?(record)
        if hang { try? await Task.sleep(for: hangFor) }
        return Response(status: .init(code: status), body: .init(byteBuffer: ByteBuffer(string: status == 200 ? "success" : "no")))
    }

    static func parseForm(_ raw: String) -> [String: String] { FormEncoding.parse(raw) }
}

final class PortBox: Sendable {
    let value = Mutex<Int?>(nil)
}
