import ArgumentParser
import Crypto
import Foundation
import SwiftASN1
import X509

/// `orchestrator tls init`: a private certificate authority and a server certificate for the
/// named hosts, so that a coordinator can serve TLS without an openssl binary or a public CA.
struct TLS: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "TLS for the coordinator: make a private CA and a server certificate.",
        subcommands: [TLSInit.self])
}

struct TLSInit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write ca.pem, server.pem and server-key.pem for `serve --tls-cert server.pem --tls-key server-key.pem`; clients trust ca.pem (--ca-file).",
        discussion: """
            The CA's private key is written too (ca-key.pem), so that more server certificates can be \
            made later from the same CA; keep it off the network. Keys are ECDSA P-256; files holding \
            keys are created with mode 0600.
            """)

    @Option(help: "Folder to write into (created; existing files are not overwritten).") var out: String
    @Option(name: .customLong("host"), help: "A host name or IP address the coordinator is reached at (repeatable).")
    var hosts: [String] = []
    @Option(help: "Days the certificates are valid (0: expired at once, for tests).") var days = 825

    func validate() throws {
        if hosts.isEmpty { throw ValidationError("name at least one --host (a DNS name or an IP address)") }
        guard (0...3650).contains(days) else { throw ValidationError("--days must be from 0 to 3650") }
        for host in hosts where TLSNames.generalName(host) == nil {
            throw ValidationError("--host \(host) is neither a DNS name nor an IP address")
        }
    }

    func run() throws {
        let files = try Self.write(to: URL(fileURLWithPath: out, isDirectory: true), hosts: hosts, days: days)
        let dir = URL(fileURLWithPath: out, isDirectory: true)
        printOut("wrote \(files.map(\.lastPathComponent).joined(separator: ", ")) in \(dir.path) for \(hosts.joined(separator: ", "))")
        printOut("serve:   orchestrator serve --tls-cert \(files[2].path) --tls-key \(files[3].path) …")
        printOut("clients: --coordinator https://\(hosts[0]):7000 --ca-file \(files[0].path)  (or ORCHESTRATOR_CA_FILE)")
    }

    /// Writes ca.pem, ca-key.pem, server.pem and server-key.pem (keys 0600) into `dir` (created;
    /// existing files are not overwritten) and returns them in that order.
    static func write(to dir: URL, hosts: [String], days: Int) throws -> [URL] {
        let files = ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem"].map { dir.appendingPathComponent($0) }
        if let existing = files.first(where: { FileManager.default.fileExists(atPath: $0.path) }) {
            throw CLIError("\(existing.path) already exists; choose another --out")
        }
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw CLIError("cannot create \(dir.path): \((error as NSError).localizedDescription)")
        }
        let made: (ca: String, caKey: String, server: String, serverKey: String)
        do { made = try TLSNames.make(hosts: hosts, days: days) } catch { throw CLIError("cannot make the certificates: \(error)") }
        for (file, text, secret) in [(files[0], made.ca, false), (files[1], made.caKey, true),
                                     (files[2], made.server, false), (files[3], made.serverKey, true)] {
            guard FileManager.default.createFile(atPath: file.path, contents: Data(text.utf8),
                                                 attributes: [.posixPermissions: secret ? 0o600 : 0o644]) else {
                throw CLIError("cannot write \(file.path)")
            }
        }
        return files
    }
}

/// Certificate making for `tls init`.
enum TLSNames {
    /// `host` as a subject alternative name: an IPv4/IPv6 address, else a DNS name.
    static func generalName(_ host: String) -> GeneralName? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: v4) { ArraySlice($0) }))
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: v6) { ArraySlice($0) }))
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        let ok = !host.isEmpty && host.utf8.count <= 253 && labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && label.unicodeScalars.allSatisfy {
                $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-")
            } && !label.hasPrefix("-") && !label.hasSuffix("-")
        }
        return ok ? .dnsName(host.lowercased()) : nil
    }

    /// A CA and a server certificate for `hosts` signed by it, all as PEM.
    static func make(hosts: [String], days: Int) throws -> (ca: String, caKey: String, server: String, serverKey: String) {
        let now = Date()
        let notBefore = now.addingTimeInterval(-300)
        let notAfter = days == 0 ? now.addingTimeInterval(-60) : now.addingTimeInterval(Double(days) * 86_400)
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName {
            OrganizationName("nst-orchestrator")
            CommonName("nst-orchestrator private CA")
        }
        let ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey),
            notValidBefore: notBefore, notValidAfter: notAfter.addingTimeInterval(86_400),
            issuer: caName, subject: caName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(caKey.publicKey))
            },
            issuerPrivateKey: .init(caKey))
        let serverKey = P256.Signing.PrivateKey()
        let serverName = try DistinguishedName {
            OrganizationName("nst-orchestrator")
            CommonName(hosts[0])
        }
        let server = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(serverKey.publicKey),
            notValidBefore: notBefore, notValidAfter: notAfter,
            issuer: caName, subject: serverName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(hosts.compactMap(generalName))
                AuthorityKeyIdentifier(keyIdentifier: try ca.extensions.subjectKeyIdentifier?.keyIdentifier)
            },
            issuerPrivateKey: .init(caKey))
        return (try ca.serializeAsPEM().pemString, caKey.pemRepresentation,
                try server.serializeAsPEM().pemString, serverKey.pemRepresentation)
    }
}
