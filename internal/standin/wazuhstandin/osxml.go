package wazuhstandin

import (
	"fmt"
	"strings"
)

// Node is one element of an XML document as Wazuh's own parser (src/os_xml)
// reads it: a name, attributes, text content and child elements, with the line
// it started on. Wazuh's parser is not a conforming XML parser: it does not
// decode entities, accepts several root elements and reports errors with its
// own "XMLERR: ..." texts, which is why the stand-in does not use encoding/xml.
type Node struct {
	Name     string
	Attrs    map[string]string
	Content  string
	Children []*Node
	Line     int
}

// Child returns the first child element called name, or nil.
func (n *Node) Child(name string) *Node {
	for _, c := range n.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// ChildrenNamed returns every child element called name, in document order.
func (n *Node) ChildrenNamed(name string) []*Node {
	var out []*Node
	for _, c := range n.Children {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

// Text returns the trimmed content of the first child called name and whether it exists.
func (n *Node) Text(name string) (string, bool) {
	c := n.Child(name)
	if c == nil {
		return "", false
	}
	return strings.TrimSpace(c.Content), true
}

// XMLError is a parse failure in the shape Wazuh's parser reports it: a message
// and the line the parser had reached, printed as "(1226): Error reading XML
// file 'etc/ossec.conf': <Msg> (line <Line>)."
type XMLError struct {
	Msg  string
	Line int
}

func (e *XMLError) Error() string { return fmt.Sprintf("%s (line %d)", e.Msg, e.Line) }

// xmlMaxSize is os_xml's XML_MAXSIZE: the longest element name or content it reads.
const xmlMaxSize = 2048

// ParseXML reads doc as Wazuh's os_xml does and returns its root elements.
func ParseXML(doc string) ([]*Node, error) {
	p := &xmlParser{src: doc, line: 1}
	root := &Node{}
	if err := p.elements(root, 0); err != nil {
		return nil, err
	}
	return root.Children, nil
}

type xmlParser struct {
	src  string
	pos  int
	line int
}

func (p *xmlParser) next() (byte, bool) {
	if p.pos >= len(p.src) {
		return 0, false
	}
	c := p.src[p.pos]
	p.pos++
	if c == '\n' {
		p.line++
	}
	return c, true
}

func (p *xmlParser) peek() (byte, bool) {
	if p.pos >= len(p.src) {
		return 0, false
	}
	return p.src[p.pos], true
}

func (p *xmlParser) fail(format string, args ...any) error {
	return &XMLError{Msg: fmt.Sprintf(format, args...), Line: p.line}
}

// comment skips a "<!-- ... -->" or "<? ... ?>" block whose "<" has been read;
// it reports whether there was one.
func (p *xmlParser) comment() (bool, error) {
	rest := p.src[p.pos:]
	var end string
	switch {
	case strings.HasPrefix(rest, "!--"):
		end = "-->"
	case strings.HasPrefix(rest, "?"):
		end = "?>"
	case strings.HasPrefix(rest, "!"):
		end = ">"
	default:
		return false, nil
	}
	i := strings.Index(rest[1:], end)
	if i < 0 {
		p.line += strings.Count(rest, "\n")
		p.pos = len(p.src)
		return false, p.fail("XMLERR: Comment not closed.")
	}
	skip := rest[:1+i+len(end)]
	p.line += strings.Count(skip, "\n")
	p.pos += len(skip)
	return true, nil
}

// elements reads sibling elements into parent until the parent's closing tag
// (depth > 0) or the end of the document (depth 0).
func (p *xmlParser) elements(parent *Node, depth int) error {
	var text strings.Builder
	for {
		c, ok := p.next()
		if !ok {
			if depth > 0 {
				return p.fail("XMLERR: End of file and some elements were not closed.")
			}
			return nil
		}
		if c != '<' {
			if depth > 0 {
				if text.Len() >= xmlMaxSize {
					return p.fail("XMLERR: String overflow.")
				}
				text.WriteByte(c)
			}
			continue
		}
		if skipped, err := p.comment(); err != nil {
			return err
		} else if skipped {
			continue
		}
		if n, _ := p.peek(); n == '/' {
			p.next()
			if depth == 0 {
				return p.fail("XMLERR: Element not opened.")
			}
			name, err := p.closeTag()
			if err != nil {
				return err
			}
			if name != parent.Name {
				return p.fail("XMLERR: Element '%s' not closed.", parent.Name)
			}
			if len(parent.Children) == 0 {
				parent.Content = text.String()
			} else {
				parent.Content = strings.TrimSpace(text.String())
			}
			return nil
		}
		child, selfClosed, err := p.openTag()
		if err != nil {
			return err
		}
		parent.Children = append(parent.Children, child)
		if !selfClosed {
			if err := p.elements(child, depth+1); err != nil {
				return err
			}
		}
	}
}

// openTag reads "name attr='v' ...>" after "<".
func (p *xmlParser) openTag() (*Node, bool, error) {
	n := &Node{Line: p.line}
	var name strings.Builder
	for {
		c, ok := p.next()
		if !ok {
			return nil, false, p.fail("XMLERR: End of file and some elements were not closed.")
		}
		if c == '>' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			n.Name = strings.TrimSuffix(name.String(), "/")
			selfClosed := strings.HasSuffix(name.String(), "/")
			if c != '>' {
				closed, err := p.attributes(n)
				if err != nil {
					return nil, false, err
				}
				selfClosed = selfClosed || closed
			}
			return n, selfClosed, nil
		}
		if name.Len() >= xmlMaxSize {
			return nil, false, p.fail("XMLERR: String overflow.")
		}
		name.WriteByte(c)
	}
}

// attributes reads attributes up to ">" or "/>"; it reports a "/>" ending.
func (p *xmlParser) attributes(n *Node) (bool, error) {
	var attr strings.Builder
	for {
		c, ok := p.next()
		if !ok {
			return false, p.fail("XMLERR: End of file while reading an attribute.")
		}
		switch {
		case c == '>' || c == '/':
			if attr.Len() > 0 {
				return false, p.fail("XMLERR: Attribute '%s' not closed.", attr.String())
			}
			if c == '/' {
				if c2, _ := p.next(); c2 != '>' {
					return false, p.fail("XMLERR: Attribute '%s' not closed.", attr.String())
				}
				return true, nil
			}
			return false, nil
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		case c == '=':
			q, _ := p.next()
			for q == ' ' {
				q, _ = p.next()
			}
			if q != '"' && q != '\'' {
				return false, p.fail("XMLERR: Attribute '%s' not followed by a \" or '.", attr.String())
			}
			end := strings.IndexByte(p.src[p.pos:], q)
			if end < 0 {
				return false, p.fail("XMLERR: End of file while reading an attribute.")
			}
			value := p.src[p.pos : p.pos+end]
			p.line += strings.Count(value, "\n")
			p.pos += end + 1
			if n.Attrs == nil {
				n.Attrs = map[string]string{}
			}
			if _, dup := n.Attrs[attr.String()]; dup {
				return false, p.fail("XMLERR: Attribute '%s' already defined.", attr.String())
			}
			n.Attrs[attr.String()] = value
			attr.Reset()
		default:
			attr.WriteByte(c)
		}
	}
}

// closeTag reads "name>" after "</".
func (p *xmlParser) closeTag() (string, error) {
	var name strings.Builder
	for {
		c, ok := p.next()
		if !ok {
			return "", p.fail("XMLERR: End of file and some elements were not closed.")
		}
		if c == '>' {
			return strings.TrimSpace(name.String()), nil
		}
		name.WriteByte(c)
	}
}
