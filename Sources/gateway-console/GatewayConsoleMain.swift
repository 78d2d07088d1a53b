import ArgumentParser
import GatewayConsole
import GatewayRuntime

@main
struct GatewayConsoleMain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway-console",
        abstract: "Serves the operator console: the review queue, decision pages, bulk review, the pipeline, the audit and (admins) users, in a browser.",
        discussion: """
            Listens on console.listen (workers.yml; loopback by default: put a TLS proxy in front for anything else and set \
            console.secure_cookies). Users are added with gatewayctl user add NAME --role viewer|reviewer|admin|auditor [--level N]; \
            they sign in with their password and a TOTP code. TOTP secrets are sealed with the key named by console.totp_key_env or \
            console.totp_key_file (a named key that cannot be read stops the start). Set console.public_url for links in operator \
            notifications (callback-worker adds them). Configuration comes from workers.yml (--config or \
            GATEWAY_CONFIG); DATABASE_URL and POSTGRES_HOSTNAME/PORT/USER/PASSWORD/DB override its database settings. \
            Stops gracefully on SIGTERM or SIGINT.
            """)

    @OptionGroup var options: ProcessOptions

    func run() async throws {
        try await runConsole(options: options)
    }
}
