import Foundation
import GatewayCore
import GatewayRuntime
import GatewayServices
import HTTPTypes
import Hummingbird
import Logging
import PostgresNIO

extension Console {
    /// The changes the Users page makes, by the last part of their path.
    static let userChanges = ["disable", "enable", "reset-totp", "role"]

    /// Admins' list of console users, each with its change forms (every change asks for the acting
    /// admin's TOTP code and carries the row's version).
    func usersPage(user: ConsoleUser, status: HTTPResponse.Status, message: String? = nil, done: String? = nil) async throws -> Response {
        guard user.canManageUsers else { throw ConsoleRefusal(status: .forbidden, heading: "Not allowed", text: "Only admins see and change console users.") }
        let users = try await database.withConnection { c in try await ConsoleAccounts.list(on: c, logger: logger) }
        var data: [String: Any] = [
            "users": users.map { u -> [String: Any] in
                let role = ConsoleRole(rawValue: u.role)
                return ["name": u.name, "role": u.role, "level": u.reviewLevel, "disabled": u.disabled, "version": u.version,
                        "lastSignIn": u.lastSignIn.map(Views.time) ?? "never", "me": u.name == user.name,
                        "roles": ConsoleRole.allCases.map { ["value": $0.rawValue, "selected": $0 == role] }]
            },
        ]
        if let message { data["message"] = message }
        if let done { data["done"] = done }
        return html(status, "users", title: "Users", user: user, data)
    }

    /// One change of the Users page. Refused, with nothing changed: for non-admins, for the admin's
    /// own account (gatewayctl changes that), without a fresh TOTP code of the acting admin, and when
    /// the user's row changed since the page was read.
    func changeUser(_ req: Request, name: String, change: String, user: ConsoleUser) async throws -> Response {
        guard user.canManageUsers else { throw ConsoleRefusal(status: .forbidden, heading: "Not allowed", text: "Only admins change console users.") }
        guard Self.userChanges.contains(change), ConsoleAccounts.validName(name) else { throw ServiceError.notFound("no such change") }
        let form = try await Form.read(req)
        guard let version = Int(form["version"]) else { throw ServiceError.invalid("the form carries no version; reload the page") }
        if name == user.name {
            return try await usersPage(user: user, status: .unprocessableContent,
                                       message: "You cannot change your own account here (another admin, or gatewayctl user, can); nothing was changed.")
        }
        var role = ConsoleRole.viewer, level = 0
        if change == "role" {
            guard let r = ConsoleRole(rawValue: form["role"]), let l = Int(form["level"].trimmingCharacters(in: .whitespaces).isEmpty ? "0" : form["level"]) else {
                return try await usersPage(user: user, status: .unprocessableContent, message: "Pick a role and a level (a number); nothing was changed.")
            }
            (role, level) = (r, l)
        }
        let actor = "console:\(user.name)"
        let detail: [String: JSONValue] = ["step_up": .string("totp")]
        do {
            let enrollment = try await database.transaction { c -> TOTPEnrollment? in
                guard try await ConsoleAccounts.useTOTP(userID: user.id, code: form["code"], secrets: secrets, on: c, logger: logger) else { throw StepUpRequired() }
                switch change {
                case "disable":
                    try await ConsoleAccounts.disable(name: name, expectedVersion: version, actor: actor, detail: detail, on: c, logger: logger)
                case "enable":
                    try await ConsoleAccounts.enable(name: name, expectedVersion: version, actor: actor, detail: detail, on: c, logger: logger)
                case "role":
                    try await ConsoleAccounts.setRole(name: name, role: role, reviewLevel: level, expectedVersion: version, actor: actor, detail: detail,
                                                      on: c, logger: logger)
                default:
                    return try await ConsoleAccounts.resetTOTP(name: name, expectedVersion: version, secrets: secrets, actor: actor, detail: detail, on: c, logger: logger)
                }
                return nil
            }
            if let enrollment {
                return html(.ok, "totp_enrollment", title: "New TOTP secret", user: user,
                            ["name": name, "secret": enrollment.base32Secret, "uri": enrollment.uri])
            }
            return Self.redirect("/users?done=\(change == "role" ? "role" : change == "enable" ? "enabled" : "disabled")")
        } catch is StepUpRequired {
            return try await usersPage(user: user, status: .forbidden,
                                       message: "User changes need a current code from your authenticator (each code works once). Nothing was changed.")
        } catch let e as ServiceError {
            switch e {
            case .notFound: throw e
            case .conflict: return try await usersPage(user: user, status: .conflict, message: Self.capitalized(e.description))
            case .invalid: return try await usersPage(user: user, status: .unprocessableContent, message: Self.capitalized(e.description) + "; nothing was changed.")
            }
        }
    }
}
