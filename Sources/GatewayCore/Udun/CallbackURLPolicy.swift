import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which callback URLs merchants may register (SSRF protection): http(s) only, and no loopback,
/// private or link-local targets unless allowed.
public struct CallbackURLPolicy: Sendable, Equatable {
    public var allowLoopback: Bool
    public var allowPrivate: Bool

    public init(allowLoopback: Bool = false, allowPrivate: Bool = false) {
        self.allowLoopback = allowLoopback
        self.allowPrivate = allowPrivate
    }

    /// The class of a target address.
    public enum AddressClass: Equatable, Sendable { case publicAddress, loopback, privateNetwork, linkLocal, unspecified }

    /// Checks a URL as registered; returns a reason when it is refused. Host names other than
    /// `localhost` are checked again on their resolved addresses when a callback is delivered.
    public func refusal(for text: String) -> String? {
        guard text.utf8.count <= 2048 else { return "callUrl is longer than 2048 characters" }
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased() else { return "callUrl is not a URL" }
        guard scheme == "http" || scheme == "https" else { return "callUrl must use http or https" }
        guard let host = url.host, !host.isEmpty else { return "callUrl has no host" }
        guard url.user == nil, url.password == nil else { return "callUrl must not carry credentials" }
        return refusal(host: host)
    }

    /// Checks one host (a name or an IP literal).
    public func refusal(host rawHost: String) -> String? {
        var host = rawHost.lowercased()
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.hasSuffix(".") { host = String(host.dropLast()) }
        let cls: AddressClass
        if host == "localhost" || host.hasSuffix(".localhost") {
            cls = .loopback
        } else if let c = Self.classify(ip: host) {
            cls = c
        } else {
            return nil  // a name: checked on its addresses at delivery
        }
        return refusal(for: cls)
    }

    /// Whether an address class is allowed; a reason when not.
    public func refusal(for cls: AddressClass) -> String? {
        switch cls {
        case .publicAddress: return nil
        case .loopback: return allowLoopback ? nil : "callUrl points at a loopback address, which this gateway does not allow"
        case .privateNetwork: return allowPrivate ? nil : "callUrl points at a private network address, which this gateway does not allow"
        case .linkLocal: return "callUrl points at a link-local address"
        case .unspecified: return "callUrl points at an unspecified or reserved address"
        }
    }

    /// Classifies an IP literal (IPv4 in any form `inet_aton` accepts, or IPv6); nil for a host name.
    public static func classify(ip: String) -> AddressClass? {
        var v4 = in_addr()
        if ip.first.map({ $0.isNumber }) == true, inet_aton(ip, &v4) != 0 {
            return classify(v4: UInt32(bigEndian: v4.s_addr))
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, ip, &v6) == 1 {
            let b = withUnsafeBytes(of: v6) { Array($0) }
            if b[0..<10].allSatisfy({ $0 == 0 }), b[10] == 0xff, b[11] == 0xff {  // ::ffff:a.b.c.d
                return classify(v4: UInt32(b[12]) << 24 | UInt32(b[13]) << 16 | UInt32(b[14]) << 8 | UInt32(b[15]))
            }
            if b[0..<15].allSatisfy({ $0 == 0 }) { return b[15] == 1 ? .loopback : .unspecified }
            if b[0] == 0xfe, b[1] & 0xc0 == 0x80 { return .linkLocal }
            if b[0] & 0xfe == 0xfc { return .privateNetwork }
            if b[0] == 0xff { return .unspecified }  // multicast
            return .publicAddress
        }
        return nil
    }

    static func classify(v4 a: UInt32) -> AddressClass {
        func inNet(_ net: UInt32, _ bits: UInt32) -> Bool { a >> (32 - bits) == net >> (32 - bits) }
        if inNet(0x7f00_0000, 8) { return .loopback }
        if inNet(0x0a00_0000, 8) || inNet(0xac10_0000, 12) || inNet(0xc0a8_0000, 16) || inNet(0x6440_0000, 10) { return .privateNetwork }
        if inNet(0xa9fe_0000, 16) { return .linkLocal }
        if inNet(0x0000_0000, 8) || inNet(0xe000_0000, 4) || inNet(0xf000_0000, 4) { return .unspecified }
        return .publicAddress
    }
}
