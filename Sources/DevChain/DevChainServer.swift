import GatewayCore
import GatewayRuntime
import Hummingbird
import Logging

/// The local chain node (Ethereum JSON-RPC and TRON HTTP API subsets) as a library, so tests can
/// start it in-process. This first version serves `/healthz`; the chain itself lands with the
/// keys/chains issue.
public struct DevChainServer: Sendable {
    public var listen: ListenAddress

    public init(listen: ListenAddress) { self.listen = listen }

    /// The HTTP application serving the node.
    public func application(logger: Logger) -> some ApplicationProtocol {
        let router = Router()
        router.get("/healthz") { _, _ -> String in "ok\n" }
        return Application(router: router, configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: nil), logger: logger)
    }
}
