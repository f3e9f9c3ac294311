import Foundation

/// A restricted unpickler for PyTorch state dicts: it reads the opcodes `torch.save` writes (pickle
/// protocols 2 to 5) and builds `PickleValue`s, never running code.
///
/// The only globals it accepts are `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` and
/// `_rebuild_tensor`, `torch._utils._rebuild_parameter` and `_rebuild_parameter_with_state`, and torch's
/// typed storage classes (a subset of torch's own `weights_only` allow-list); any other name
/// (`posix.system`, `builtins.eval`, a model class) is refused with `WeightsError.forbiddenGlobal` as
/// soon as it is read. REDUCE is interpreted for those callables only, BINPERSID only for storage ids
/// `('storage', torch.FloatStorage, key, location, numel[, None])`. Hostile input is bounded: every
/// length is checked against the bytes left, MARK and container nesting stop at `maxDepth`, a
/// container cannot change once it is inside another one (so no cycles), pops below a MARK fail, and
/// a pickle may run at most `maxOpcodes` opcodes (each creates at most one small value), which bounds
/// the memory a file of NONEs or APPENDs can make us use.
struct Unpickler {
    static let maxDepth = 64
    /// About 20 opcodes per tensor: room for 200 000 tensors.
    static let maxOpcodes = 4_000_000

    private let data: Data
    let file: String
    /// Where the pickle comes from, for messages: "archive/data.pkl", "the legacy header".
    var source: String
    private let base: Int
    /// The index in `data` of the next byte; after `load()`, the byte after STOP.
    private(set) var position: Int
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    private var opcodeStart = 0
    /// Every storage a persistent id has described so far, by key (across `load()` calls).
    var storages: [String: TorchStorageRef] = [:]

    init(data: Data, file: String, source: String) {
        self.data = data
        self.file = file
        self.source = source
        base = data.startIndex
        position = data.startIndex
    }

    /// Reads one pickle, up to and including its STOP opcode.
    mutating func load() throws(WeightsError) -> PickleValue {
        stack = []; marks = []; memo = [:]
        for _ in 0..<Self.maxOpcodes {
            opcodeStart = position
            let op = try byte()
            switch op {
            case 0x80:  // PROTO
                let version = try byte()
                guard version <= 5 else { throw bad("pickle protocol \(version) is newer than 5") }
            case 0x95: _ = try unsigned(8)  // FRAME: a length hint
            case 0x2E:  // STOP
                guard marks.isEmpty, stack.count == 1 else {
                    throw bad("STOP with \(stack.count) values on the stack and \(marks.count) open marks")
                }
                return stack.removeLast()

            // MARK: Containers
            case 0x28:  // MARK
                guard marks.count < Self.maxDepth else { throw bad("marks nested deeper than \(Self.maxDepth)") }
                marks.append(stack.count)
            case 0x29: stack.append(.tuple([], depth: 1))  // EMPTY_TUPLE
            case 0x85, 0x86, 0x87: try push(tuple(pop(Int(op) - 0x84)))  // TUPLE1, TUPLE2, TUPLE3
            case 0x74: try push(tuple(popMark()))  // TUPLE
            case 0x5D: stack.append(.list(PickleList()))  // EMPTY_LIST
            case 0x6C:  // LIST
                let list = PickleList()
                for item in try popMark() { try append(item, to: list) }
                stack.append(.list(list))
            case 0x61:  // APPEND
                let item = try pop()
                try append(item, to: topList())
            case 0x65:  // APPENDS
                let items = try popMark()
                let list = try topList()
                for item in items { try append(item, to: list) }
            case 0x7D: stack.append(.dict(PickleDict()))  // EMPTY_DICT
            case 0x64:  // DICT
                let dict = PickleDict()
                try setItems(try popMark(), in: dict)
                stack.append(.dict(dict))
            case 0x73:  // SETITEM
                let pair = try pop(2)
                try setItems(pair, in: topDict())
            case 0x75:  // SETITEMS
                let items = try popMark()
                try setItems(items, in: topDict())

            // MARK: Scalars
            case 0x58: try push(.string(string(length: unsigned(4))))  // BINUNICODE
            case 0x8C: try push(.string(string(length: unsigned(1))))  // SHORT_BINUNICODE
            case 0x8D: try push(.string(string(length: unsigned(8))))  // BINUNICODE8
            case 0x55: try push(.string(string(length: unsigned(1))))  // SHORT_BINSTRING (Python 2 str)
            case 0x54: try push(.string(string(length: unsigned(4))))  // BINSTRING (Python 2 str)
            case 0x4A: try push(.int(Int(Int32(truncatingIfNeeded: unsigned(4)))))  // BININT
            case 0x4B: try push(.int(unsigned(1)))  // BININT1
            case 0x4D: try push(.int(unsigned(2)))  // BININT2
            case 0x8A: try push(long(length: unsigned(1)))  // LONG1
            case 0x47:  // BINFLOAT: big-endian IEEE 754 double
                let bytes = try take(8)
                push(.float(Double(bitPattern: bytes.reduce(0) { $0 << 8 | UInt64($1) })))
            case 0x88: push(.bool(true))  // NEWTRUE
            case 0x89: push(.bool(false))  // NEWFALSE
            case 0x4E: push(.none)  // NONE

            // MARK: Memo and stack
            case 0x71: memo[try unsigned(1)] = try top()  // BINPUT
            case 0x72: memo[try unsigned(4)] = try top()  // LONG_BINPUT
            case 0x94: memo[memo.count] = try top()  // MEMOIZE
            case 0x68: try push(memoized(unsigned(1)))  // BINGET
            case 0x6A: try push(memoized(unsigned(4)))  // LONG_BINGET
            case 0x30:  // POP (discards the mark when the stack above it is empty)
                if stack.count > (marks.last ?? 0) { stack.removeLast() } else { _ = try popMark() }
            case 0x31: _ = try popMark()  // POP_MARK
            case 0x32: try push(top())  // DUP

            // MARK: Objects
            case 0x63:  // GLOBAL "module\nname\n"
                let module = try line(), name = try line()
                try push(.global(allowed(module: module, name: name)))
            case 0x93:  // STACK_GLOBAL
                let pair = try pop(2)
                guard case .string(let module) = pair[0], case .string(let name) = pair[1] else {
                    throw bad("STACK_GLOBAL needs two strings, found \(pair[0].kind) and \(pair[1].kind)")
                }
                try push(.global(allowed(module: module, name: name)))
            case 0x52:  // REDUCE
                let pair = try pop(2)
                try push(reduce(pair[0], arguments: pair[1]))
            case 0x62:  // BUILD
                let state = try pop()
                try build(top(), state: state)
            case 0x51: try push(persistent(pop()))  // BINPERSID
            default:
                let printable = (0x21...0x7E).contains(op) ? " ('\(Character(Unicode.Scalar(op)))')" : ""
                throw bad("unsupported opcode 0x\(String(op, radix: 16, uppercase: true))\(printable)")
            }
        }
        throw bad("more than \(Self.maxOpcodes) opcodes: far more than any state dict needs")
    }

    // MARK: - Bytes

    func bad(_ reason: String) -> WeightsError {
        .badPickle(file: file, reason: "\(source), byte \(opcodeStart - base): \(reason)")
    }

    private mutating func byte() throws(WeightsError) -> UInt8 {
        guard position < data.endIndex else { throw bad("the pickle ends before its STOP opcode") }
        defer { position += 1 }
        return data[position]
    }

    private mutating func take(_ count: Int) throws(WeightsError) -> Data {
        guard count >= 0, count <= data.endIndex - position else {
            throw bad("needs \(count) bytes, only \(data.endIndex - position) are left")
        }
        defer { position += count }
        return data[position ..< position + count]
    }

    /// A little-endian unsigned integer of `count` bytes (at most 8), which must fit an Int.
    private mutating func unsigned(_ count: Int) throws(WeightsError) -> Int {
        let value = try take(count).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard value <= UInt64(Int.max) else { throw bad("length \(value) is too large") }
        return Int(value)
    }

    private mutating func string(length: Int) throws(WeightsError) -> String {
        guard let s = String(bytes: try take(length), encoding: .utf8) else { throw bad("a string is not valid UTF-8") }
        return s
    }

    /// A newline-terminated ASCII line of GLOBAL (a module or a name).
    private mutating func line() throws(WeightsError) -> String {
        let end = data[position...].prefix(256).firstIndex(of: 0x0A)
        guard let end else { throw bad("GLOBAL without a newline-terminated name") }
        let text = try string(length: end - position)
        position += 1
        return text
    }

    private mutating func long(length: Int) throws(WeightsError) -> PickleValue {
        let bytes = Array(try take(length))
        guard !bytes.isEmpty else { return .int(0) }
        guard bytes.count <= 8 else { return .bigInt(bytes) }
        let negative = bytes.last! & 0x80 != 0
        var value: UInt64 = negative ? .max : 0  // sign-extend
        for b in bytes.reversed() { value = value << 8 | UInt64(b) }
        return .int(Int(Int64(bitPattern: value)))
    }

    // MARK: - Stack

    private mutating func push(_ value: PickleValue) { stack.append(value) }

    private func top() throws(WeightsError) -> PickleValue {
        guard stack.count > (marks.last ?? 0), let value = stack.last else { throw bad("stack underflow") }
        return value
    }

    private mutating func pop() throws(WeightsError) -> PickleValue {
        let value = try top()
        stack.removeLast()
        return value
    }

    /// The top `count` values, oldest first.
    private mutating func pop(_ count: Int) throws(WeightsError) -> [PickleValue] {
        guard stack.count - count >= (marks.last ?? 0) else { throw bad("stack underflow") }
        defer { stack.removeLast(count) }
        return Array(stack.suffix(count))
    }

    /// The values pushed since the last MARK, oldest first; the mark is removed.
    private mutating func popMark() throws(WeightsError) -> [PickleValue] {
        guard let mark = marks.popLast() else { throw bad("no MARK to pop to") }
        defer { stack.removeLast(stack.count - mark) }
        return Array(stack[mark...])
    }

    private func memoized(_ index: Int) throws(WeightsError) -> PickleValue {
        guard let value = memo[index] else { throw bad("memo entry \(index) was never stored") }
        return value
    }

    // MARK: - Containers

    private func tuple(_ items: [PickleValue]) throws(WeightsError) -> PickleValue {
        let depth = 1 + (items.map(\.depth).max() ?? 0)
        guard depth <= Self.maxDepth else { throw bad("values nested deeper than \(Self.maxDepth)") }
        for item in items { item.seal() }
        return .tuple(items, depth: depth)
    }

    private func topList() throws(WeightsError) -> PickleList {
        guard case .list(let list) = try top() else { throw bad("APPEND to \(try top().kind), not a list") }
        return list
    }

    private func topDict() throws(WeightsError) -> PickleDict {
        guard case .dict(let dict) = try top() else { throw bad("SETITEM on \(try top().kind), not a dict") }
        return dict
    }

    /// Checks that `container` may still change and can take `child`, then records the nesting.
    private func adopt(_ child: PickleValue, into container: PickleContainer) throws(WeightsError) {
        guard !container.sealed else { throw bad("a list or dict changes after being placed in another object") }
        guard container.adopt(child) else { throw bad("a list or dict contains itself") }
        guard container.depth <= Self.maxDepth else { throw bad("values nested deeper than \(Self.maxDepth)") }
    }

    private func append(_ item: PickleValue, to list: PickleList) throws(WeightsError) {
        try adopt(item, into: list)
        list.append(item)
    }

    private func setItems(_ items: [PickleValue], in dict: PickleDict) throws(WeightsError) {
        guard items.count % 2 == 0 else { throw bad("SETITEMS with an odd number (\(items.count)) of keys and values") }
        for i in stride(from: 0, to: items.count, by: 2) {
            try adopt(items[i], into: dict)
            try adopt(items[i + 1], into: dict)
            dict.set(items[i], items[i + 1])
        }
    }
}
