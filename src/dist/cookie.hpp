// The magic cookie, found as erl finds it.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace erl::detail::dist {

class cookie_error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Reads a cookie file with erl's rules (kernel's auth module): it must be a regular file that
// only its owner can read or write (mode & 077 == 0), and hold printable ASCII (' '..'~')
// followed only by optional spaces, CRs and newlines; it must not be empty. Throws cookie_error
// naming the file and the rule it breaks.
std::string read_cookie_file(const std::string& path);
// Checks the text of a cookie as read_cookie_file does (for tests and for given cookies).
std::string check_cookie_text(std::string_view text, std::string_view origin);

// Where erl looks: $HOME/.erlang.cookie, or else, if that file does not exist,
// $XDG_CONFIG_HOME/erlang/.erlang.cookie ($XDG_CONFIG_HOME defaults to $HOME/.config).
// Unlike erl, nothing is created when neither exists.
std::string default_cookie_path();
// `given` as it is if there is one (like erl's -setcookie), else the
// cookie file's; throws cookie_error when there is neither ("no cookie: give one or create
// ~/.erlang.cookie").
std::string find_cookie(const std::optional<std::string>& given);

} // namespace erl::detail::dist
