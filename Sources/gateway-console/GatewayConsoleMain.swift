import ArgumentParser
import GatewayConsole
import GatewayRuntime

@main
struct GatewayConsoleMain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway-console",
        abstract: "Serves the operator console: the review queue, decision pages, bulk review, the pipeline and the audit, in a browser.",
        discussion: """
            Listens on console.listen (workers.yml; loopback by default: put a TLS proxy in front for anything else and set \
            console.secure_cookies). Users are added with gatewayctl user add NAME --role viewer|reviewer|admin|auditor [--level N]; \
            they sign in with their password and a TOTP code. 
            """ + ProcessOptions.discussion)

    @OptionGroup var options: ProcessOptions

    func run() async throws {
        try await runConsole(options: options)
    }
}
