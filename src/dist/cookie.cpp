#include "dist/cookie.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace erl::detail::dist {
namespace {

std::string env_or(const char* name, std::string fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : fallback;
}

bool exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
}

} // namespace

std::string check_cookie_text(std::string_view text, std::string_view origin) {
    std::size_t n = 0;
    while (n < text.size() && text[n] >= ' ' && text[n] <= '~')
        ++n;
    for (std::size_t i = n; i < text.size(); ++i)
        if (text[i] != '\n' && text[i] != '\r' && text[i] != ' ')
            throw cookie_error(fmt::format("cookie {}: bad characters in cookie", origin));
    // As erl: trailing spaces before the line end belong to the printable run and stay.
    if (n == 0) throw cookie_error(fmt::format("cookie {}: too short cookie string", origin));
    return std::string(text.substr(0, n));
}

std::string read_cookie_file(const std::string& path) {
    // Non-blocking so that a FIFO in its place cannot hang us (refused below as not regular).
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) throw cookie_error(fmt::format("cookie file {}: {}", path, std::strerror(errno)));
    struct closer {
        int fd;
        ~closer() { ::close(fd); }
    } guard{fd};
    struct stat st;
    if (::fstat(fd, &st) != 0)
        throw cookie_error(fmt::format("cookie file {}: {}", path, std::strerror(errno)));
    if (!S_ISREG(st.st_mode))
        throw cookie_error(fmt::format("cookie file {} is not a regular file", path));
    if (st.st_mode & 077)
        throw cookie_error(
            fmt::format("cookie file {} must be accessible by owner only (chmod 400)", path));
    if (st.st_size > 65536) throw cookie_error(fmt::format("cookie file {} is too large", path));
    std::string text(std::size_t(st.st_size), '\0');
    std::size_t got = 0;
    while (got < text.size()) {
        ssize_t r = ::read(fd, text.data() + got, text.size() - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0)
            throw cookie_error(fmt::format("cookie file {}: {}", path, std::strerror(errno)));
        if (r == 0) break;
        got += std::size_t(r);
    }
    text.resize(got);
    return check_cookie_text(text, "file " + path);
}

std::string default_cookie_path() {
    std::string home = env_or("HOME", "");
    std::string primary = home + "/.erlang.cookie";
    if (home.empty() || exists(primary)) return primary;
    std::string xdg = env_or("XDG_CONFIG_HOME", home + "/.config") + "/erlang/.erlang.cookie";
    return exists(xdg) ? xdg : primary;
}

std::string find_cookie(const std::optional<std::string>& given) {
    if (given) return *given; // as erl -setcookie: any atom text, taken as it is
    if (std::getenv("HOME") == nullptr)
        throw cookie_error("no cookie: none given and $HOME is not set");
    std::string path = default_cookie_path();
    if (!exists(path))
        throw cookie_error(fmt::format(
            "no cookie: none given and {} does not exist (create it, mode 400, or give one)",
            path));
    return read_cookie_file(path);
}

} // namespace erl::detail::dist
