// erlcpp-etf: a command-line window on the ETF codec.
//   erlcpp-etf decode   ETF on stdin  -> Erlang text + newline on stdout
//   erlcpp-etf encode   Erlang text on stdin (trailing '.' optional) -> ETF on stdout
//   erlcpp-etf recode   ETF on stdin  -> decoded and re-encoded ETF on stdout
// Malformed input: one line on stderr naming the byte offset, exit status 1.
#include <erl/etf.hpp>
#include <erl/term.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

namespace {

std::vector<std::uint8_t> read_stdin() {
    std::vector<std::uint8_t> data;
    std::uint8_t buf[65536];
    for (;;) {
        std::size_t n = std::fread(buf, 1, sizeof buf, stdin);
        data.insert(data.end(), buf, buf + n);
        if (n < sizeof buf) break;
    }
    return data;
}

void write_stdout(const void* p, std::size_t n) {
    if (std::fwrite(p, 1, n, stdout) != n) throw std::runtime_error("write to stdout failed");
}

int usage() {
    std::fputs("usage: erlcpp-etf decode|encode|recode  (input on stdin, output on stdout)\n",
               stderr);
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) return usage();
    std::string cmd = argv[1];
    try {
        auto in = read_stdin();
        if (cmd == "decode") {
            std::string s = erl::etf::decode(in).to_string();
            s.push_back('\n');
            write_stdout(s.data(), s.size());
        } else if (cmd == "encode") {
            std::string_view text(reinterpret_cast<const char*>(in.data()), in.size());
            auto out = erl::etf::encode(erl::term::parse(text));
            write_stdout(out.data(), out.size());
        } else if (cmd == "recode") {
            auto out = erl::etf::encode(erl::etf::decode(in));
            write_stdout(out.data(), out.size());
        } else {
            return usage();
        }
        return std::fflush(stdout) == 0 ? 0 : 1;
    } catch (const erl::etf_error& e) {
        std::fprintf(stderr, "erlcpp-etf: malformed ETF at byte offset %zu: %s\n", e.offset(),
                     e.reason().c_str());
    } catch (const erl::term_parse_error& e) {
        std::fprintf(stderr, "erlcpp-etf: bad term text at byte offset %zu: %s\n", e.offset(),
                     e.what());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "erlcpp-etf: %s\n", e.what());
    }
    return 1;
}
